/**
 * The fake API server of test/kube does a few things to built-in objects that the controller's fast tests
 * depend on: it defaults Jobs and pods, refuses a Job whose pods would restart in place or that has no
 * container, a pod without containers, and changes to a Job's template, selector and completion mode.
 * Each of those writes goes here to the fake and to a real kube-apiserver: the status codes must match, a
 * refusal must name the same fields, and every field the fake defaults must hold the real server's value.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ControlPlane, type KubeResponse, startControlPlane } from '../helpers/control-plane.js';
import { FakeApiServer } from '../kube/fake-api-server/index.js';

let cp: ControlPlane;
let fake: FakeApiServer;

before(async () => {
  fake = await FakeApiServer.start();
  cp = await startControlPlane({ controllers: false });
  // Without the controller manager nobody creates the namespace's default ServiceAccount, and the
  // ServiceAccount admission plugin refuses every pod before validation (403).
  const sa = await cp.request('POST', '/api/v1/namespaces/default/serviceaccounts', {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default' },
  });
  assert.equal(sa.status, 201, JSON.stringify(sa.body));
});

after(async () => {
  await cp?.stop();
  await fake?.stop();
});

const jobs = '/apis/batch/v1/namespaces/default/jobs';
const pods = '/api/v1/namespaces/default/pods';

async function toFake(method: string, path: string, body: unknown): Promise<KubeResponse> {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

interface Causes {
  details?: { causes?: { field?: string }[] };
}

const fields = (res: KubeResponse) =>
  [...new Set(((res.body as Causes).details?.causes ?? []).map((c) => c.field ?? ''))].sort();

/** Sends the same write to both servers; they must answer alike. Returns both answers (fake, real). */
async function same(method: string, path: string, body: unknown): Promise<[KubeResponse, KubeResponse]> {
  const f = await toFake(method, path, body);
  const r = await cp.request(method, path, body);
  assert.equal(f.status, r.status, `fake ${JSON.stringify(f.body)}\nreal ${JSON.stringify(r.body)}`);
  assert.deepEqual(fields(f), fields(r), `fake ${JSON.stringify(f.body)}\nreal ${JSON.stringify(r.body)}`);
  return [f, r];
}

const container = { name: 'stage', image: 'rlhf:test', command: ['rlhf', 'stage'] };
const job = (name: string, podSpec: object) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name },
  spec: { template: { spec: podSpec } },
});

test('a Job whose pods restart in place (restartPolicy Always) is refused at the same field', async () => {
  const [, real] = await same(
    'POST',
    jobs,
    job('always', { containers: [container], restartPolicy: 'Always' }),
  );
  assert.equal(real.status, 422);
});

test('a Job without containers is refused at the same field', async () => {
  const [, real] = await same('POST', jobs, job('empty', { containers: [], restartPolicy: 'Never' }));
  assert.equal(real.status, 422);
});

test('a pod without containers is refused at the same field', async () => {
  const [, real] = await same('POST', pods, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'empty' },
    spec: { containers: [] },
  });
  assert.equal(real.status, 422);
});

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every leaf the fake stored, as [keys, value] (label keys contain dots, so paths stay arrays). */
function leaves(v: unknown, path: (string | number)[], out: [(string | number)[], unknown][] = []) {
  if (isObject(v)) for (const [k, child] of Object.entries(v)) leaves(child, [...path, k], out);
  else if (Array.isArray(v)) for (const [i, child] of v.entries()) leaves(child, [...path, i], out);
  else out.push([path, v]);
  return out;
}

function at(v: unknown, path: (string | number)[]): unknown {
  let node = v;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === 'number') node = node[key];
    else if (isObject(node) && typeof key === 'string') node = node[key];
    else return undefined;
  }
  return node;
}

const stored: { fake?: Json; real?: Json } = {};

test('a Job both accept: every field the fake defaults holds the real server value', async () => {
  const [f, r] = await same(
    'POST',
    jobs,
    job('stage-1', { containers: [container], restartPolicy: 'Never' }),
  );
  assert.equal(r.status, 201, JSON.stringify(r.body));
  stored.fake = f.body as Json;
  stored.real = r.body as Json;
  const fakeUid = at(f.body, ['metadata', 'uid']);
  const realUid = at(r.body, ['metadata', 'uid']);
  const checked = leaves(at(f.body, ['spec']), ['spec']);
  assert.ok(checked.length > 10, 'the fake defaulted the spec');
  for (const [path, value] of checked) {
    // The selector and the template labels name each server's own uid for the Job.
    const expected = value === fakeUid ? realUid : value;
    assert.deepEqual(
      at(r.body, path),
      expected,
      `${path.join('.')}: the fake stored ${JSON.stringify(value)}`,
    );
  }
});

const updates: { what: string; change(job: Json): void; accepted: boolean }[] = [
  {
    what: "the template's command",
    change: (j) => {
      (at(j, ['spec', 'template', 'spec', 'containers', 0]) as Json).command = ['rlhf', 'other'];
    },
    accepted: false,
  },
  {
    // A selector that still matches the template's labels: the fake does not check that they match (the
    // real server also refuses spec.template.metadata.labels for one that does not).
    what: 'the selector',
    change: (j) => {
      (at(j, ['spec']) as Json).selector = { matchLabels: { 'job-name': 'stage-1' } };
    },
    accepted: false,
  },
  {
    what: 'the completion mode',
    change: (j) => {
      (at(j, ['spec']) as Json).completionMode = 'Indexed';
    },
    accepted: false,
  },
  {
    what: 'parallelism and backoffLimit',
    change: (j) => {
      Object.assign(at(j, ['spec']) as Json, { parallelism: 2, backoffLimit: 1 });
    },
    accepted: true,
  },
];

for (const u of updates) {
  test(`a Job update of ${u.what} is ${u.accepted ? 'accepted' : 'refused at the same field'} by both`, async () => {
    assert.ok(stored.fake && stored.real, 'the stored Job');
    const answers: KubeResponse[] = [];
    // Each server gets its own stored object (its uid and resourceVersion) with the same change.
    for (const [who, obj] of [
      ['fake', stored.fake],
      ['real', stored.real],
    ] as const) {
      const next = structuredClone(obj);
      u.change(next);
      const path = `${jobs}/stage-1?dryRun=All`;
      answers.push(
        who === 'fake' ? await toFake('PUT', `${jobs}/stage-1`, next) : await cp.request('PUT', path, next),
      );
    }
    const [f, r] = answers as [KubeResponse, KubeResponse];
    assert.equal(f.status, r.status, `fake ${JSON.stringify(f.body)}\nreal ${JSON.stringify(r.body)}`);
    assert.equal(r.status, u.accepted ? 200 : 422, JSON.stringify(r.body));
    assert.deepEqual(fields(f), fields(r), `fake ${JSON.stringify(f.body)}\nreal ${JSON.stringify(r.body)}`);
  });
}
