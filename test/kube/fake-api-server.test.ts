/** The fake API server through @kubernetes/client-node 1.4: CRUD, concurrency, status, deletion, apply. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Job } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { FakeApiServer, type JsonObject, PatchTypes } from './fake-api-server/index.js';
import { asApply, asMergePatch, asStrategicMergePatch, clientsFor, statusOf } from './fixtures/clients.js';
import { group, iterationCrd, noteCrd, runCrd, version } from './fixtures/crds.js';

let server: FakeApiServer;
let c: ReturnType<typeof clientsFor>;

before(async () => {
  server = await FakeApiServer.start({ crds: [runCrd, iterationCrd, noteCrd] });
  c = clientsFor(server);
});
after(() => server.stop());

const runs = { group, version, plural: 'rlhfruns' };
const iterations = { group, version, plural: 'rlhfiterations' };
const run = (name: string, spec: JsonObject = {}, extra: JsonObject = {}) => ({
  apiVersion: `${group}/${version}`,
  kind: 'RLHFRun',
  metadata: { name, ...((extra.metadata as JsonObject) ?? {}) },
  spec,
  ...(extra.status ? { status: extra.status } : {}),
});
type Obj = {
  metadata: { name: string; uid: string; resourceVersion: string; generation?: number; [k: string]: unknown };
  [k: string]: unknown;
};

function job(name: string, extra: Partial<V1Job['metadata']> = {}): V1Job {
  return {
    metadata: { name, ...extra },
    spec: {
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'busybox:1', command: ['true'] }],
        },
      },
    },
  };
}

describe('discovery', () => {
  test('serves core, batch, coordination and CRD groups with their resources', async () => {
    const core = await c.core.getAPIResources();
    const coreNames = core.resources.map((r) => r.name);
    for (const n of ['pods', 'pods/status', 'pods/log', 'events', 'secrets', 'configmaps'])
      assert.ok(coreNames.includes(n), n);
    const groups = (await c.apis.getAPIVersions()).groups.map((g) => g.name);
    for (const g of ['batch', 'coordination.k8s.io', 'apiextensions.k8s.io', 'rlhf.dev'])
      assert.ok(groups.includes(g), g);
    const res = await fetch(`${server.url}/apis/rlhf.dev/v1alpha1`).then(
      (r) => r.json() as Promise<JsonObject>,
    );
    const runRes = (res.resources as JsonObject[]).find((r) => r.name === 'rlhfruns');
    assert.deepEqual([runRes?.kind, runRes?.namespaced, runRes?.shortNames], ['RLHFRun', true, ['rr']]);
    assert.ok((res.resources as JsonObject[]).some((r) => r.name === 'rlhfruns/status'));
    const notes = await fetch(`${server.url}/apis/rlhf.dev/v1alpha1`).then(
      (r) => r.json() as Promise<{ resources: JsonObject[] }>,
    );
    assert.equal(notes.resources.find((r) => r.name === 'notes')?.namespaced, false);
    assert.equal(
      notes.resources.some((r) => r.name === 'notes/status'),
      false,
    );
  });

  test('loadCrdFile registers every CRD of a multi-document YAML file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'crds-')), 'crds.yaml');
    const gadget = structuredClone(noteCrd) as {
      metadata: JsonObject;
      spec: { group: string; names: JsonObject };
    };
    gadget.metadata.name = 'gadgets.example.org';
    gadget.spec.group = 'example.org';
    gadget.spec.names = { plural: 'gadgets', kind: 'Gadget' };
    writeFileSync(path, `${stringify({ apiVersion: 'v1', kind: 'ConfigMap' })}---\n${stringify(gadget)}`);
    server.loadCrdFile(path);
    const list = (await c.custom.listClusterCustomObject({
      group: 'example.org',
      version,
      plural: 'gadgets',
    })) as { kind: string };
    assert.equal(list.kind, 'GadgetList');
  });

  test('a CRD POSTed to apiextensions.k8s.io/v1 becomes a served resource', async () => {
    await c.apiextensions.createCustomResourceDefinition({
      body: {
        metadata: { name: 'widgets.example.com' },
        spec: {
          group: 'example.com',
          scope: 'Namespaced',
          names: { plural: 'widgets', kind: 'Widget' },
          versions: [
            { name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } },
          ],
        },
      },
    });
    const w = { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default' };
    await c.custom.createNamespacedCustomObject({
      ...w,
      body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' } },
    });
    const got = (await c.custom.getNamespacedCustomObject({ ...w, name: 'w1' })) as Obj;
    assert.equal(got.kind, 'Widget');
    const crd = await c.apiextensions.readCustomResourceDefinition({ name: 'widgets.example.com' });
    assert.ok(crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True'));
    await c.apiextensions.deleteCustomResourceDefinition({ name: 'widgets.example.com' });
    const gone = await statusOf(c.custom.getNamespacedCustomObject({ ...w, name: 'w1' }));
    assert.equal(gone.code, 404);
  });
});

describe('create, get, update', () => {
  test('create sets uid, creationTimestamp, resourceVersion, generation 1 and schema defaults; get 404 is a NotFound Status', async () => {
    const created = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('basic', { dpo: {} }),
    })) as Obj;
    assert.match(created.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(String(created.metadata.creationTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(created.metadata.generation, 1);
    assert.deepEqual(created.spec, { iterations: 3, reference: 'initial', dpo: { beta: 0.1 } });
    const missing = await statusOf(
      c.custom.getNamespacedCustomObject({ ...runs, namespace: 'default', name: 'nope' }),
    );
    assert.deepEqual(
      [missing.code, missing.reason, missing.message, missing.details],
      [
        404,
        'NotFound',
        'rlhfruns.rlhf.dev "nope" not found',
        { name: 'nope', group: 'rlhf.dev', kind: 'rlhfruns' },
      ],
    );
    const missingJob = await statusOf(c.batch.readNamespacedJob({ name: 'nope', namespace: 'default' }));
    assert.equal(missingJob.message, 'jobs.batch "nope" not found');
  });

  test('a second create of the same name is 409 AlreadyExists; generateName makes unique names', async () => {
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'default', body: run('dup') });
    const again = await statusOf(
      c.custom.createNamespacedCustomObject({ ...runs, namespace: 'default', body: run('dup') }),
    );
    assert.deepEqual([again.code, again.reason], [409, 'AlreadyExists']);
    const body = {
      apiVersion: `${group}/${version}`,
      kind: 'RLHFRun',
      metadata: { generateName: 'gen-' },
      spec: {},
    };
    const a = (await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'default', body })) as Obj;
    const b = (await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'default', body })) as Obj;
    assert.match(a.metadata.name, /^gen-[a-z0-9]{5}$/);
    assert.notEqual(a.metadata.name, b.metadata.name);
  });

  test('resourceVersion is global and increasing; an update with a stale one is 409 Conflict', async () => {
    const created = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('rv'),
    })) as Obj;
    const job1 = await c.batch.createNamespacedJob({ namespace: 'default', body: job('rv-job') });
    assert.ok(Number(job1.metadata?.resourceVersion) > Number(created.metadata.resourceVersion));
    const first = (await c.custom.replaceNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'rv',
      body: { ...created, spec: { ...(created.spec as JsonObject), iterations: 4 } },
    })) as Obj;
    assert.ok(Number(first.metadata.resourceVersion) > Number(job1.metadata?.resourceVersion));
    const stale = await statusOf(
      c.custom.replaceNamespacedCustomObject({
        ...runs,
        namespace: 'default',
        name: 'rv',
        body: { ...created, spec: { iterations: 9 } },
      }),
    );
    assert.deepEqual([stale.code, stale.reason], [409, 'Conflict']);
    assert.match(stale.message ?? '', /the object has been modified/);
    const { resourceVersion: _, ...noRv } = created.metadata;
    const unconditional = await statusOf(
      c.custom.replaceNamespacedCustomObject({
        ...runs,
        namespace: 'default',
        name: 'rv',
        body: { ...created, metadata: noRv },
      }),
    );
    assert.deepEqual([unconditional.code, unconditional.reason], [422, 'Invalid']);
  });

  test('an update that changes nothing writes nothing (same resourceVersion, no event)', async () => {
    const created = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('noop'),
    })) as Obj;
    const before = server.events.length;
    const same = (await c.custom.replaceNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'noop',
      body: created,
    })) as Obj;
    assert.equal(same.metadata.resourceVersion, created.metadata.resourceVersion);
    assert.equal(server.events.length, before);
  });
});

describe('status subresource and generation', () => {
  test('create drops .status; main-resource writes ignore .status; /status writes change only .status', async () => {
    const created = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('st', { iterations: 2 }, { status: { phase: 'Done' } }),
    })) as Obj;
    assert.equal(created.status, undefined);
    const labelled = (await c.custom.patchNamespacedCustomObject(
      {
        ...runs,
        namespace: 'default',
        name: 'st',
        body: { metadata: { labels: { a: 'b' } }, status: { phase: 'Hacked' } },
      },
      asMergePatch,
    )) as Obj;
    assert.equal(labelled.status, undefined);
    assert.equal(labelled.metadata.generation, 1, 'metadata-only change keeps generation');
    const withStatus = (await c.custom.replaceNamespacedCustomObjectStatus({
      ...runs,
      namespace: 'default',
      name: 'st',
      body: { ...labelled, spec: { iterations: 99 }, status: { phase: 'Running', observedGeneration: 1 } },
    })) as Obj;
    assert.deepEqual(withStatus.status, { phase: 'Running', observedGeneration: 1 });
    assert.equal((withStatus.spec as JsonObject).iterations, 2, '/status ignores spec');
    assert.equal(withStatus.metadata.generation, 1, 'status change keeps generation');
    const specChanged = (await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'default', name: 'st', body: { spec: { iterations: 5 } } },
      asMergePatch,
    )) as Obj;
    assert.equal(specChanged.metadata.generation, 2);
    assert.deepEqual(specChanged.status, { phase: 'Running', observedGeneration: 1 });
    const statusPatched = (await c.custom.patchNamespacedCustomObjectStatus(
      { ...runs, namespace: 'default', name: 'st', body: { status: { observedGeneration: 2 } } },
      asMergePatch,
    )) as Obj;
    assert.deepEqual(statusPatched.status, { phase: 'Running', observedGeneration: 2 });
    assert.equal(statusPatched.metadata.generation, 2);
  });

  test('without a status subresource .status is written with the object and bumps generation (cluster-scoped kind)', async () => {
    const notes = { group, version, plural: 'notes' };
    const created = (await c.custom.createClusterCustomObject({
      ...notes,
      body: { apiVersion: `${group}/${version}`, kind: 'Note', metadata: { name: 'n1' }, status: { x: 1 } },
    })) as Obj;
    assert.deepEqual(created.status, { x: 1 });
    assert.equal(created.metadata.namespace, undefined);
    const patched = (await c.custom.patchClusterCustomObject(
      { ...notes, name: 'n1', body: { status: { x: 2 } } },
      asMergePatch,
    )) as Obj;
    assert.equal(patched.metadata.generation, 2);
    const noStatus = await statusOf(c.custom.getClusterCustomObjectStatus({ ...notes, name: 'n1' }));
    assert.equal(noStatus.code, 404);
  });

  test('Job status is reset on create and written only through /status', async () => {
    const created = await c.batch.createNamespacedJob({
      namespace: 'default',
      body: { ...job('js'), status: { succeeded: 5 } },
    });
    assert.equal(created.status?.succeeded, undefined);
    assert.equal(created.spec?.backoffLimit, 6);
    created.status = { active: 1 };
    const st = await c.batch.replaceNamespacedJobStatus({ name: 'js', namespace: 'default', body: created });
    assert.equal(st.status?.active, 1);
    const bad = await statusOf(
      c.batch.createNamespacedJob({
        namespace: 'default',
        body: {
          metadata: { name: 'bad' },
          spec: { template: { spec: { containers: [{ name: 'm', image: 'x' }] } } },
        },
      }),
    );
    assert.deepEqual(
      [bad.code, bad.reason, bad.details?.causes?.[0]?.field],
      [422, 'Invalid', 'spec.template.spec.restartPolicy'],
    );
  });
});

describe('patch', () => {
  test('json-patch is client-node 1.4’s default patch type; merge patch with a stale resourceVersion is 409', async () => {
    await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('p', { iterations: 1 }),
    });
    const jp = (await c.custom.patchNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'p',
      body: [
        { op: 'test', path: '/spec/iterations', value: 1 },
        { op: 'replace', path: '/spec/iterations', value: 2 },
        { op: 'add', path: '/metadata/labels', value: { team: 'a' } },
      ],
    })) as Obj;
    assert.equal((jp.spec as JsonObject).iterations, 2);
    const failedTest = await statusOf(
      c.custom.patchNamespacedCustomObject({
        ...runs,
        namespace: 'default',
        name: 'p',
        body: [{ op: 'test', path: '/spec/iterations', value: 1 }],
      }),
    );
    assert.equal(failedTest.code, 422);
    const stale = await statusOf(
      c.custom.patchNamespacedCustomObject(
        {
          ...runs,
          namespace: 'default',
          name: 'p',
          body: { metadata: { resourceVersion: '1' }, spec: { iterations: 3 } },
        },
        asMergePatch,
      ),
    );
    assert.equal(stale.code, 409);
    const removed = (await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'default', name: 'p', body: { metadata: { labels: { team: null } } } },
      asMergePatch,
    )) as Obj;
    assert.deepEqual(removed.metadata.labels, {});
  });

  test('strategic merge patch merges built-in lists by key and is refused (415) for custom resources', async () => {
    await c.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'smp' },
        spec: {
          containers: [
            { name: 'a', image: 'x:1', env: [{ name: 'A', value: '1' }] },
            { name: 'b', image: 'y:1' },
          ],
        },
      },
    });
    const patched = await c.core.patchNamespacedPod(
      {
        name: 'smp',
        namespace: 'default',
        body: { spec: { containers: [{ name: 'a', env: [{ name: 'B', value: '2' }] }] } },
      },
      asStrategicMergePatch,
    );
    const a = patched.spec?.containers.find((x) => x.name === 'a');
    assert.deepEqual(
      [patched.spec?.containers.length, a?.image, a?.env?.map((e) => e.name)],
      [2, 'x:1', ['A', 'B']],
    );
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'default', body: run('smp') });
    const refused = await statusOf(
      c.custom.patchNamespacedCustomObject(
        { ...runs, namespace: 'default', name: 'smp', body: { spec: {} } },
        asStrategicMergePatch,
      ),
    );
    assert.deepEqual([refused.code, refused.reason], [415, 'UnsupportedMediaType']);
  });
});

describe('server-side apply', () => {
  const applied = (spec: JsonObject, labels: Record<string, string> = {}) => ({
    apiVersion: `${group}/${version}`,
    kind: 'RLHFRun',
    metadata: { name: 'ssa', labels },
    spec,
  });

  test('apply creates, tracks field managers, removes fields it no longer applies, and conflicts unless forced', async () => {
    const created = (await c.custom.patchNamespacedCustomObject(
      {
        ...runs,
        namespace: 'default',
        name: 'ssa',
        body: applied({ iterations: 4, pairs: { strategy: 'maxMin' } }, { app: 'x' }),
        fieldManager: 'controller',
      },
      asApply,
    )) as Obj;
    assert.equal((created.spec as JsonObject).iterations, 4);
    const managers = (created.metadata.managedFields as { manager: string; operation: string }[]).map(
      (m) => `${m.manager}:${m.operation}`,
    );
    assert.deepEqual(managers, ['controller:Apply']);

    // Another manager changes a field through an ordinary merge patch and so owns it.
    await c.custom.patchNamespacedCustomObject(
      {
        ...runs,
        namespace: 'default',
        name: 'ssa',
        body: { spec: { iterations: 7 } },
        fieldManager: 'kubectl-edit',
      },
      asMergePatch,
    );
    const conflict = await statusOf(
      c.custom.patchNamespacedCustomObject(
        {
          ...runs,
          namespace: 'default',
          name: 'ssa',
          body: applied({ iterations: 4 }, { app: 'x' }),
          fieldManager: 'controller',
        },
        asApply,
      ),
    );
    assert.deepEqual([conflict.code, conflict.reason], [409, 'Conflict']);
    assert.deepEqual(conflict.details?.causes?.[0], {
      reason: 'FieldManagerConflict',
      message: 'conflict with "kubectl-edit"',
      field: '.spec.iterations',
    });

    const forced = (await c.custom.patchNamespacedCustomObject(
      {
        ...runs,
        namespace: 'default',
        name: 'ssa',
        body: applied({ iterations: 4 }, { app: 'x' }),
        fieldManager: 'controller',
        force: true,
      },
      asApply,
    )) as Obj;
    assert.equal((forced.spec as JsonObject).iterations, 4);
    assert.equal(
      (forced.spec as JsonObject).pairs,
      undefined,
      'a field the manager stopped applying is removed',
    );
    assert.equal((forced.spec as JsonObject).reference, 'initial', 'defaults stay');

    const missingManager = await statusOf(
      c.custom.patchNamespacedCustomObject(
        { ...runs, namespace: 'default', name: 'ssa', body: applied({}) },
        asApply,
      ),
    );
    assert.equal(missingManager.code, 422);
  });

  test('apply to /status sets status only', async () => {
    const body = {
      apiVersion: `${group}/${version}`,
      kind: 'RLHFRun',
      metadata: { name: 'ssa' },
      spec: { iterations: 1 },
      status: { phase: 'Applied' },
    };
    const out = (await c.custom.patchNamespacedCustomObjectStatus(
      { ...runs, namespace: 'default', name: 'ssa', body, fieldManager: 'controller', force: true },
      asApply,
    )) as Obj;
    assert.deepEqual(out.status, { phase: 'Applied' });
    assert.equal((out.spec as JsonObject).iterations, 4);
  });
});

describe('finalizers and deletion', () => {
  test('delete of an object with finalizers sets deletionTimestamp and waits for the finalizers to go', async () => {
    await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('fin', {}, { metadata: { finalizers: ['rlhf.dev/artifacts'] } }),
    });
    const pending = (await c.custom.deleteNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'fin',
    })) as Obj;
    assert.ok(pending.metadata.deletionTimestamp);
    assert.equal(pending.metadata.deletionGracePeriodSeconds, 0);
    const still = (await c.custom.getNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'fin',
    })) as Obj;
    assert.deepEqual(still.metadata.finalizers, ['rlhf.dev/artifacts']);
    const added = await statusOf(
      c.custom.patchNamespacedCustomObject(
        {
          ...runs,
          namespace: 'default',
          name: 'fin',
          body: { metadata: { finalizers: ['rlhf.dev/artifacts', 'other'] } },
        },
        asMergePatch,
      ),
    );
    assert.equal(added.code, 422);
    await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'default', name: 'fin', body: { metadata: { finalizers: null } } },
      asMergePatch,
    );
    const gone = await statusOf(
      c.custom.getNamespacedCustomObject({ ...runs, namespace: 'default', name: 'fin' }),
    );
    assert.equal(gone.code, 404);
    const finEvents = server.events.filter((e) => e.name === 'fin').map((e) => e.type);
    assert.deepEqual(finEvents, ['ADDED', 'MODIFIED', 'DELETED']);
  });

  test('deleting an owner deletes its dependents in the background, recursively, respecting their finalizers', async () => {
    const owner = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('owner'),
    })) as Obj;
    const ref = (o: Obj, kind: string, apiVersion: string) => ({
      apiVersion,
      kind,
      name: o.metadata.name,
      uid: o.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    });
    const iter = (await c.custom.createNamespacedCustomObject({
      ...iterations,
      namespace: 'default',
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'RLHFIteration',
        metadata: {
          name: 'owner-1',
          finalizers: ['rlhf.dev/cleanup'],
          ownerReferences: [ref(owner, 'RLHFRun', `${group}/${version}`)],
        },
      },
    })) as Obj;
    const j = await c.batch.createNamespacedJob({
      namespace: 'default',
      body: job('owner-1-gen', { ownerReferences: [ref(iter, 'RLHFIteration', `${group}/${version}`)] }),
    });
    await c.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'owner-1-gen-pod', ownerReferences: [ref(j as Obj, 'Job', 'batch/v1')] },
        spec: { containers: [{ name: 'm', image: 'x' }] },
      },
    });
    await c.custom.deleteNamespacedCustomObject({ ...runs, namespace: 'default', name: 'owner' });
    assert.equal(
      (await statusOf(c.custom.getNamespacedCustomObject({ ...runs, namespace: 'default', name: 'owner' })))
        .code,
      404,
    );
    const deleting = (await c.custom.getNamespacedCustomObject({
      ...iterations,
      namespace: 'default',
      name: 'owner-1',
    })) as Obj;
    assert.ok(deleting.metadata.deletionTimestamp, 'the dependent with a finalizer is being deleted');
    assert.ok(
      await c.batch.readNamespacedJob({ name: 'owner-1-gen', namespace: 'default' }),
      'its own dependents wait for it',
    );
    await c.custom.patchNamespacedCustomObject({
      ...iterations,
      namespace: 'default',
      name: 'owner-1',
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    assert.equal(
      (await statusOf(c.batch.readNamespacedJob({ name: 'owner-1-gen', namespace: 'default' }))).code,
      404,
    );
    assert.equal(
      (await statusOf(c.core.readNamespacedPod({ name: 'owner-1-gen-pod', namespace: 'default' }))).code,
      404,
    );
  });

  test('a batch/v1 Job deleted without a propagationPolicy orphans its pods (the real default); Background removes them', async () => {
    for (const name of ['orphaning', 'cascading']) {
      const j = await c.batch.createNamespacedJob({ namespace: 'default', body: job(name) });
      await c.core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: {
            name: `${name}-pod`,
            ownerReferences: [
              { apiVersion: 'batch/v1', kind: 'Job', name, uid: j.metadata!.uid!, controller: true },
            ],
          },
          spec: { containers: [{ name: 'm', image: 'x' }] },
        },
      });
    }
    await c.batch.deleteNamespacedJob({ name: 'orphaning', namespace: 'default' });
    const orphan = await c.core.readNamespacedPod({ name: 'orphaning-pod', namespace: 'default' });
    assert.equal(orphan.metadata?.ownerReferences, undefined);
    await c.batch.deleteNamespacedJob({
      name: 'cascading',
      namespace: 'default',
      propagationPolicy: 'Background',
    });
    assert.equal(
      (await statusOf(c.core.readNamespacedPod({ name: 'cascading-pod', namespace: 'default' }))).code,
      404,
    );
  });

  test('foreground deletion keeps the owner until blocking dependents are gone', async () => {
    const owner = (await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      body: run('fg'),
    })) as Obj;
    await c.core.createNamespacedConfigMap({
      namespace: 'default',
      body: {
        metadata: {
          name: 'fg-cm',
          finalizers: ['test/hold'],
          ownerReferences: [
            {
              apiVersion: `${group}/${version}`,
              kind: 'RLHFRun',
              name: 'fg',
              uid: owner.metadata.uid,
              blockOwnerDeletion: true,
            },
          ],
        },
      },
    });
    await c.custom.deleteNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'fg',
      propagationPolicy: 'Foreground',
    });
    const waiting = (await c.custom.getNamespacedCustomObject({
      ...runs,
      namespace: 'default',
      name: 'fg',
    })) as Obj;
    assert.deepEqual(waiting.metadata.finalizers, ['foregroundDeletion']);
    const cm = await c.core.readNamespacedConfigMap({ name: 'fg-cm', namespace: 'default' });
    assert.ok(cm.metadata?.deletionTimestamp);
    await c.core.patchNamespacedConfigMap(
      { name: 'fg-cm', namespace: 'default', body: { metadata: { finalizers: [] } } },
      asMergePatch,
    );
    assert.equal(
      (await statusOf(c.custom.getNamespacedCustomObject({ ...runs, namespace: 'default', name: 'fg' })))
        .code,
      404,
    );
  });
});

describe('lists and selectors', () => {
  before(async () => {
    const labels: Record<string, Record<string, string>> = {
      l1: { app: 'rlhf', tier: 'train' },
      l2: { app: 'rlhf', tier: 'judge' },
      l3: { app: 'other' },
      l4: { app: 'rlhf', tier: 'train', legacy: 'yes' },
    };
    for (const [name, l] of Object.entries(labels)) {
      await c.custom.createNamespacedCustomObject({
        ...runs,
        namespace: 'sel',
        body: run(name, {}, { metadata: { labels: l } }),
      });
    }
    await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'sel-other',
      body: run('l5', {}, { metadata: { labels: { app: 'rlhf' } } }),
    });
  });
  const names = async (opts: { labelSelector?: string; fieldSelector?: string }) => {
    const list = (await c.custom.listNamespacedCustomObject({ ...runs, namespace: 'sel', ...opts })) as {
      items: Obj[];
    };
    return list.items.map((i) => i.metadata.name);
  };

  test('equality, set-based and existence label selectors; metadata.name field selector', async () => {
    assert.deepEqual(await names({ labelSelector: 'app=rlhf' }), ['l1', 'l2', 'l4']);
    assert.deepEqual(await names({ labelSelector: 'app==rlhf,tier!=judge' }), ['l1', 'l4']);
    assert.deepEqual(await names({ labelSelector: 'tier in (train,judge),!legacy' }), ['l1', 'l2']);
    assert.deepEqual(await names({ labelSelector: 'app notin (rlhf)' }), ['l3']);
    assert.deepEqual(await names({ labelSelector: 'legacy' }), ['l4']);
    assert.deepEqual(await names({ fieldSelector: 'metadata.name=l2' }), ['l2']);
    assert.deepEqual(await names({ fieldSelector: 'metadata.name!=l2', labelSelector: 'app=rlhf' }), [
      'l1',
      'l4',
    ]);
  });

  test('list carries the list resourceVersion and kind; all-namespace lists span namespaces; limit/continue pages', async () => {
    const list = (await c.custom.listNamespacedCustomObject({ ...runs, namespace: 'sel' })) as {
      kind: string;
      metadata: { resourceVersion: string };
    };
    assert.equal(list.kind, 'RLHFRunList');
    assert.equal(list.metadata.resourceVersion, server.resourceVersion);
    const all = (await c.custom.listCustomObjectForAllNamespaces({ ...runs, labelSelector: 'app=rlhf' })) as {
      items: Obj[];
    };
    assert.ok(
      all.items.some((i) => i.metadata.name === 'l5') && all.items.some((i) => i.metadata.name === 'l1'),
    );
    const page1 = (await c.custom.listNamespacedCustomObject({ ...runs, namespace: 'sel', limit: 3 })) as {
      items: Obj[];
      metadata: { continue?: string };
    };
    assert.equal(page1.items.length, 3);
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'sel', body: run('l9') });
    const page2 = (await c.custom.listNamespacedCustomObject({
      ...runs,
      namespace: 'sel',
      limit: 3,
      _continue: page1.metadata.continue!,
    })) as { items: Obj[]; metadata: { continue?: string } };
    assert.deepEqual(
      page2.items.map((i) => i.metadata.name),
      ['l4'],
      'the second page is consistent with the first (no l9)',
    );
    assert.equal(page2.metadata.continue, undefined);
  });

  test('an exact list at a compacted resourceVersion is 410 Expired', async () => {
    const old = server.resourceVersion;
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'sel', body: run('l10') });
    const exact = (await c.custom.listNamespacedCustomObject({
      ...runs,
      namespace: 'sel',
      resourceVersion: old,
      resourceVersionMatch: 'Exact',
    })) as { items: Obj[] };
    assert.ok(!exact.items.some((i) => i.metadata.name === 'l10'));
    server.compact();
    const expired = await statusOf(
      c.custom.listNamespacedCustomObject({
        ...runs,
        namespace: 'sel',
        resourceVersion: old,
        resourceVersionMatch: 'Exact',
      }),
    );
    assert.deepEqual([expired.code, expired.reason], [410, 'Expired']);
  });
});

describe('leases', () => {
  test('two candidates racing on one Lease resourceVersion: one wins, the other gets 409', async () => {
    const lease = await c.coordination.createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'rlhf-controller' },
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15 },
      },
    });
    const bid = (holder: string) =>
      c.coordination.replaceNamespacedLease({
        name: 'rlhf-controller',
        namespace: 'default',
        body: { ...lease, spec: { ...lease.spec, holderIdentity: holder, acquireTime: new Date() } },
      });
    const results = await Promise.allSettled([bid('b'), bid('c')]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((lost.reason as { code: number }).code, 409);
    const now = await c.coordination.readNamespacedLease({ name: 'rlhf-controller', namespace: 'default' });
    const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<typeof lease>)
      .value;
    assert.equal(now.spec?.holderIdentity, winner.spec?.holderIdentity);
  });
});

describe('accounting', () => {
  test('requests are counted per verb and resource; events record every mutation', async () => {
    server.resetRequestCounts();
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'acct', body: run('a1') });
    await c.custom.getNamespacedCustomObject({ ...runs, namespace: 'acct', name: 'a1' });
    await c.custom.patchNamespacedCustomObjectStatus(
      { ...runs, namespace: 'acct', name: 'a1', body: { status: { phase: 'x' } } },
      asMergePatch,
    );
    await c.custom.listNamespacedCustomObject({ ...runs, namespace: 'acct' });
    assert.deepEqual(server.requestCounts(), {
      'create rlhfruns.rlhf.dev': 1,
      'get rlhfruns.rlhf.dev': 1,
      'list rlhfruns.rlhf.dev': 1,
      'patch rlhfruns.rlhf.dev/status': 1,
    });
    assert.equal(
      server.totalRequests((k) => k.startsWith('patch ')),
      1,
    );
    const mine = server.events
      .filter((e) => e.namespace === 'acct')
      .map((e) => `${e.type} ${e.verb} ${e.subresource ?? ''}`.trim());
    assert.deepEqual(mine, ['ADDED create', 'MODIFIED patch status']);
  });

  test('the in-process client writes under the same rules without counting requests', () => {
    server.resetRequestCounts();
    const created = server.client.create('rlhfruns.rlhf.dev', 'acct', run('inproc'));
    assert.throws(
      () =>
        server.client.patch('rlhfruns.rlhf.dev', 'acct', 'inproc', PatchTypes.merge, {
          metadata: { resourceVersion: '1' },
        }),
      /the object has been modified/,
    );
    assert.equal((created.metadata as JsonObject).generation, 1);
    assert.deepEqual(server.requestCounts(), {});
  });
});
