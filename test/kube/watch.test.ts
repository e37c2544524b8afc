/** Watches and informers through @kubernetes/client-node 1.4 against the fake server. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADD, DELETE, ERROR, makeInformer, UPDATE, Watch } from '@kubernetes/client-node';
import { FakeApiServer, type JsonObject } from './fake-api-server/index.js';
import { asMergePatch, clientsFor, until } from './fixtures/clients.js';
import { group, runCrd, version } from './fixtures/crds.js';

let server: FakeApiServer;
let c: ReturnType<typeof clientsFor>;

before(async () => {
  server = await FakeApiServer.start({ crds: [runCrd] });
  c = clientsFor(server);
});
after(() => server.stop());

const runs = { group, version, plural: 'rlhfruns' };
const runsPath = (ns: string) => `/apis/${group}/${version}/namespaces/${ns}/rlhfruns`;
const run = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: `${group}/${version}`,
  kind: 'RLHFRun',
  metadata: { name, labels },
  spec: {},
});
type Meta = { name: string; resourceVersion: string };
type Event = { type: string; object: { metadata: Meta; code?: number; reason?: string } };

/** Opens a client-node watch and records its events and its end. */
async function record(path: string, query: Record<string, string | number | boolean>) {
  const events: Event[] = [];
  let ended: { err: unknown } | undefined;
  const abort = await new Watch(c.kc).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (err) => {
      ended = { err };
    },
  );
  const seen = () => events.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`.trim());
  return { events, seen, ended: () => ended, abort };
}

describe('watch', () => {
  test('a watch from a list resourceVersion streams ADDED, MODIFIED, DELETED after it, in order', async () => {
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'w1', body: run('before') });
    const list = (await c.custom.listNamespacedCustomObject({ ...runs, namespace: 'w1' })) as {
      metadata: Meta;
    };
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'w1', body: run('a') });
    const w = await record(runsPath('w1'), { resourceVersion: list.metadata.resourceVersion });
    await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'w1', name: 'a', body: { spec: { iterations: 2 } } },
      asMergePatch,
    );
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'other', body: run('elsewhere') });
    await c.custom.deleteNamespacedCustomObject({ ...runs, namespace: 'w1', name: 'a' });
    await until(() => w.events.length >= 3, 'three events');
    assert.deepEqual(w.seen(), ['ADDED a', 'MODIFIED a', 'DELETED a']);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(
      [...rvs].sort((x, y) => x - y),
      rvs,
    );
    w.abort.abort();
  });

  test('without a resourceVersion a watch starts with the current objects; a selector watch sees objects enter and leave', async () => {
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'w2', body: run('in', { role: 'x' }) });
    await c.custom.createNamespacedCustomObject({
      ...runs,
      namespace: 'w2',
      body: run('out', { role: 'y' }),
    });
    const w = await record(runsPath('w2'), { labelSelector: 'role=x' });
    await until(() => w.events.length >= 1, 'initial ADDED');
    await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'w2', name: 'in', body: { metadata: { labels: { role: 'y' } } } },
      asMergePatch,
    );
    await c.custom.patchNamespacedCustomObject(
      { ...runs, namespace: 'w2', name: 'out', body: { metadata: { labels: { role: 'x' } } } },
      asMergePatch,
    );
    await until(() => w.events.length >= 3, 'selector transitions');
    assert.deepEqual(w.seen(), ['ADDED in', 'DELETED in', 'ADDED out']);
    w.abort.abort();
  });

  test('bookmarks carry the current resourceVersion when the watch allows them', async () => {
    const w = await record(runsPath('w3'), {
      resourceVersion: server.resourceVersion,
      allowWatchBookmarks: true,
    });
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'elsewhere', body: run('bump') });
    server.sendBookmarks();
    await until(() => w.events.some((e) => e.type === 'BOOKMARK'), 'a bookmark');
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK')!;
    assert.equal(bookmark.object.metadata.resourceVersion, server.resourceVersion);
    w.abort.abort();
  });

  test('a watch from a compacted resourceVersion gets an ERROR event with a 410 Expired Status, then the stream ends', async () => {
    const old = server.resourceVersion;
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'w4', body: run('x') });
    server.compact();
    const w = await record(runsPath('w4'), { resourceVersion: old });
    await until(() => w.ended(), 'the stream to end');
    assert.deepEqual(
      w.events.map((e) => [e.type, e.object.code, e.object.reason]),
      [['ERROR', 410, 'Expired']],
    );
    assert.equal(w.ended()?.err, null);
  });

  test('timeoutSeconds ends the watch cleanly', async () => {
    const w = await record(runsPath('w5'), { timeoutSeconds: 1 });
    await until(() => w.ended(), 'the timeout');
    assert.equal(w.ended()?.err, null);
    assert.equal(server.openWatches, 0);
  });
});

describe('informer', () => {
  function informerOn(ns: string) {
    const informer = makeInformer<JsonObject>(c.kc, runsPath(ns), () =>
      c.custom.listNamespacedCustomObject({ ...runs, namespace: ns }),
    );
    const log: string[] = [];
    const errors: unknown[] = [];
    const name = (o: JsonObject) => (o.metadata as Meta).name;
    informer.on(ADD, (o) => log.push(`add ${name(o)}`));
    informer.on(UPDATE, (o) => log.push(`update ${name(o)}`));
    informer.on(DELETE, (o) => log.push(`delete ${name(o)}`));
    informer.on(ERROR, (e) => errors.push(e));
    const names = () => informer.list(ns).map(name).sort();
    return { informer, log, errors, names };
  }
  const lists = () => server.requestCounts()['list rlhfruns.rlhf.dev'] ?? 0;

  test('survives a dropped watch by re-watching from its resourceVersion (no relist)', async () => {
    const i = informerOn('i1');
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i1', body: run('one') });
    await i.informer.start();
    await until(() => i.names().includes('one'), 'the initial list');
    const listsBefore = lists();
    server.dropWatches();
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i1', body: run('two') });
    await until(() => i.names().includes('two'), 'the object created across the reconnect');
    assert.equal(lists(), listsBefore);
    assert.deepEqual(i.errors, []);
    await i.informer.stop();
  });

  test('relists after a 410: its resourceVersion was compacted while it was disconnected', async () => {
    const i = informerOn('i2');
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i2', body: run('keep') });
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i2', body: run('drop') });
    await i.informer.start();
    await until(() => i.names().length === 2, 'the initial list');
    const listsBefore = lists();
    // Writes elsewhere move the global resourceVersion past the informer's; compaction forgets them.
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'elsewhere', body: run('noise') });
    server.compact();
    server.dropWatches();
    await until(() => lists() > listsBefore, 'a relist');
    await c.custom.deleteNamespacedCustomObject({ ...runs, namespace: 'i2', name: 'drop' });
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i2', body: run('new') });
    await until(() => i.names().join() === 'keep,new', 'the cache to follow after the relist');
    assert.deepEqual(i.errors, []);
    await i.informer.stop();
  });

  test('an abruptly reset watch surfaces as an informer error; start() resumes it', async () => {
    const i = informerOn('i3');
    await i.informer.start();
    await until(() => server.openWatches > 0, 'the watch');
    server.dropWatches({ abrupt: true });
    await until(() => i.errors.length > 0, 'the error callback');
    await c.custom.createNamespacedCustomObject({ ...runs, namespace: 'i3', body: run('later') });
    await i.informer.start();
    await until(() => i.names().includes('later'), 'the restarted informer');
    await i.informer.stop();
  });
});
