/** startInformer against the fake API server over HTTP: sync, events, watch failures, 410 relist, resync. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import {
  type InformerEventType,
  type RuntimeLogger,
  type SupervisedInformer,
  startInformer,
} from '../../../services/controller/src/runtime/index.js';
import { FakeApiServer } from '../../kube/fake-api-server/index.js';
import { asMergePatch, clientsFor, until as untilWithin } from '../../kube/fixtures/clients.js';
import { group, runCrd, version } from '../../kube/fixtures/crds.js';

/** Everything here happens within milliseconds; a short limit makes a regression fail fast. */
const until = <T>(probe: () => T | Promise<T>, what: string, limitMs = 5000) =>
  untilWithin(probe, what, limitMs);

let server: FakeApiServer;
let c: ReturnType<typeof clientsFor>;
before(async () => {
  server = await FakeApiServer.start({ crds: [runCrd] });
  c = clientsFor(server);
});
// Stopped even when a test fails half-way, so a leftover informer cannot keep the run alive.
const running: SupervisedInformer<KubernetesObject>[] = [];
after(async () => {
  await Promise.all(running.map((i) => i.stop()));
  await server.stop();
});

const runs = { group, version, plural: 'rlhfruns' };
const create = (namespace: string, name: string) =>
  c.custom.createNamespacedCustomObject({
    ...runs,
    namespace,
    body: { apiVersion: `${group}/${version}`, kind: 'RLHFRun', metadata: { name }, spec: {} },
  });
const remove = (namespace: string, name: string) =>
  c.custom.deleteNamespacedCustomObject({ ...runs, namespace, name });
const lists = () => server.requestCounts()['list rlhfruns.rlhf.dev'] ?? 0;

/** An informer on one namespace's RLHFRuns that records its events as "<type> <name>". */
async function informerOn(
  namespace: string,
  opts: { resyncMs?: number; minBackoffMs?: number; list?: () => Promise<unknown> } = {},
) {
  const events: string[] = [];
  const warnings: unknown[] = [];
  const logger: RuntimeLogger = { info() {}, warn: (obj) => warnings.push(obj) };
  const list = opts.list ?? (() => c.custom.listNamespacedCustomObject({ ...runs, namespace }));
  const informer: SupervisedInformer<KubernetesObject> = await startInformer({
    kc: c.kc,
    path: `/apis/${group}/${version}/namespaces/${namespace}/rlhfruns`,
    list: list as () => Promise<KubernetesListObject<KubernetesObject>>,
    minBackoffMs: opts.minBackoffMs ?? 20,
    logger,
    ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}),
    onEvent: (type: InformerEventType, obj) => events.push(`${type} ${obj.metadata?.name}`),
  });
  running.push(informer);
  const names = () =>
    informer
      .list()
      .map((o) => o.metadata?.name)
      .sort()
      .join();
  return { informer, events, warnings, names };
}

describe('startInformer', () => {
  test('resolves once the first list is in the cache, having delivered an add per object', async () => {
    await create('s1', 'one');
    await create('s1', 'two');
    const i = await informerOn('s1');
    assert.equal(i.informer.synced(), true);
    assert.equal(i.names(), 'one,two');
    assert.deepEqual([...i.events].sort(), ['add one', 'add two']);
    assert.equal(i.informer.get('s1', 'one')?.metadata?.name, 'one');
    assert.equal(i.informer.get('other', 'one'), undefined);
    await i.informer.stop();
  });

  test('delivers add, update and delete events from the watch', async () => {
    const i = await informerOn('s2');
    await create('s2', 'x');
    await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 's2', name: 'x', body: { spec: { iterations: 7 } } },
      asMergePatch,
    );
    await remove('s2', 'x');
    await until(() => i.events.length >= 3, 'three events');
    assert.deepEqual(i.events, ['add x', 'update x', 'delete x']);
    assert.equal(i.names(), '');
    await i.informer.stop();
  });

  test('a reset watch connection restarts the informer, which then sees later changes', async () => {
    const i = await informerOn('s3');
    await until(() => server.openWatches > 0, 'the watch');
    server.dropWatches({ abrupt: true });
    await until(() => i.informer.restarts() === 1, 'a restart');
    await create('s3', 'after-reset');
    await until(() => i.names() === 'after-reset', 'the object created after the reset');
    assert.equal(i.warnings.length, 1);
    server.dropWatches({ abrupt: true });
    await until(() => i.informer.restarts() === 2, 'a second restart');
    await create('s3', 'after-second-reset');
    await until(() => i.names() === 'after-reset,after-second-reset', 'the object after the second reset');
    await i.informer.stop();
  });

  test('relists when its resourceVersion was compacted while it was disconnected, and drops what vanished', async () => {
    await create('s4', 'keep');
    await create('s4', 'vanish');
    // A restart delay wide enough to change the world before the informer comes back.
    const i = await informerOn('s4', { minBackoffMs: 300 });
    const listsBefore = lists();
    await until(() => server.openWatches > 0, 'the watch');
    server.dropWatches({ abrupt: true });
    await remove('s4', 'vanish');
    await create('s4', 'appeared');
    server.compact();
    await until(() => i.names() === 'appeared,keep', 'the cache to match the server');
    assert.equal(lists(), listsBefore + 1, 'one relist');
    assert.deepEqual(i.events.slice(2).sort(), ['add appeared', 'delete vanish']);
    assert.equal(i.informer.restarts(), 1);
    await i.informer.stop();
  });

  test('a failing list is retried with backoff until it succeeds', async () => {
    let failuresLeft = 2;
    const i = await informerOn('s5', {
      list: async () => {
        if (failuresLeft-- > 0) throw new Error('apiserver unavailable');
        return c.custom.listNamespacedCustomObject({ ...runs, namespace: 's5' });
      },
    });
    assert.equal(i.informer.synced(), true);
    assert.equal(i.informer.restarts(), 2);
    assert.equal(i.warnings.length, 2);
    await i.informer.stop();
  });

  test('resync re-delivers every cached object periodically', async () => {
    await create('s6', 'a');
    await create('s6', 'b');
    const i = await informerOn('s6', { resyncMs: 30 });
    await until(() => i.events.filter((e) => e.startsWith('resync')).length >= 4, 'two resyncs');
    const resyncs = i.events.filter((e) => e.startsWith('resync'));
    assert.deepEqual(resyncs.slice(0, 4).sort(), ['resync a', 'resync a', 'resync b', 'resync b']);
    await i.informer.stop();
  });

  test('stop() closes the watch, delivers nothing more and reports no error', async () => {
    await until(() => server.openWatches === 0, "the earlier tests' watches to close");
    const i = await informerOn('s7');
    await until(() => server.openWatches === 1, 'the watch');
    await i.informer.stop();
    await until(() => server.openWatches === 0, 'the watch to close');
    await create('s7', 'ignored');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(i.events, []);
    assert.deepEqual(
      i.warnings,
      [],
      'client-node reports the abort of its own watch as an error; stop() must not turn it into a restart',
    );
    assert.equal(i.informer.restarts(), 0);
  });

  test('aborted before its first list arrives, it rejects and never opens a watch', async () => {
    const ac = new AbortController();
    const watchesBefore = server.requestCounts()['watch rlhfruns.rlhf.dev'] ?? 0;
    let listed = false;
    const started = startInformer({
      kc: c.kc,
      path: `/apis/${group}/${version}/namespaces/s8/rlhfruns`,
      // The list is in flight when the informer stops; client-node would go on to open a watch.
      list: async () => {
        await new Promise((r) => setTimeout(r, 30));
        listed = true;
        return (await c.custom.listNamespacedCustomObject({ ...runs, namespace: 's8' })) as never;
      },
      signal: ac.signal,
      onEvent: () => {},
    });
    ac.abort(new Error('shutting down'));
    await assert.rejects(started, /shutting down/);
    await until(() => listed, 'the list to finish');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.requestCounts()['watch rlhfruns.rlhf.dev'] ?? 0, watchesBefore);
  });
});
