/**
 * The nats-obj:// model download cache against a real nats-server: a private per-user directory, entries
 * checked against their manifest digests (an altered or torn entry is refetched and logged), and the size
 * limit pruning least recently used entries but never a leased one.
 */
import assert from 'node:assert/strict';
import {
  appendFile,
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  type NatsConnection,
  RlhfError,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { publishModelDir } from './model-artifacts.js';
import {
  acquireModelDir,
  defaultModelCacheDir,
  ensurePrivateDir,
  pruneModelCache,
} from './model-download-cache.js';

let server: TestNats;
let nc: NatsConnection;
let dir: string;
let store: ArtifactRouter;
const stamp = Date.now();

before(async () => {
  server = await natsForTests();
  nc = await connectNats({
    url: server.url,
    name: 'download-cache-test',
    logger: createLogger('test', { level: 'warn' }),
  });
  store = new ArtifactRouter(nc, ArtifactSandbox.confined({ roots: [], nats: true }));
  dir = await mkdtemp(join(tmpdir(), 'rlhf-dlcache-'));
});
after(async () => {
  await nc?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A published "model" of `kb` KiB (the cache reads only its manifest and files, not the model). */
async function publish(name: string, kb: number): Promise<string> {
  const src = join(dir, 'src', name);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'config.json'), JSON.stringify({ name }));
  await writeFile(join(src, 'model.onnx'), Buffer.alloc(kb * 1024, name));
  const uri = `nats-obj://rlhf-test-models/dlcache-${stamp}-${name}`;
  await publishModelDir(store, src, uri);
  return uri;
}

function recorder() {
  const lines: Array<{ level: string; message: string; details: object }> = [];
  return {
    lines,
    info: (details: object, message: string) => lines.push({ level: 'info', message, details }),
    warn: (details: object, message: string) => lines.push({ level: 'warn', message, details }),
  };
}

test('the default cache is per user, and the cache directory is made or kept private (0700)', async () => {
  const uid = process.getuid?.();
  if (uid !== undefined) assert.match(defaultModelCacheDir({}), new RegExp(`rlhf-model-cache-${uid}$`));
  assert.equal(defaultModelCacheDir({ RLHF_MODEL_CACHE: '/srv/cache' }), '/srv/cache');
  const fresh = join(dir, 'private-new');
  await ensurePrivateDir(fresh);
  assert.equal((await stat(fresh)).mode & 0o777, 0o700);
  const open = join(dir, 'private-open');
  await mkdir(open);
  await chmod(open, 0o777);
  await ensurePrivateDir(open);
  assert.equal((await stat(open)).mode & 0o777, 0o700);
  const file = join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  await assert.rejects(ensurePrivateDir(file), (e: unknown) => e instanceof RlhfError);
});

test('an entry is checked against its manifest digests: an altered or torn entry is logged and refetched', async () => {
  const cacheDir = join(dir, 'cache-check');
  const uri = await publish('checked', 4);
  const log = recorder();
  const first = await acquireModelDir(store, uri, cacheDir, { logger: log });
  await first.release();
  const original = await readFile(join(first.dir, 'model.onnx'));
  assert.equal((await stat(cacheDir)).mode & 0o777, 0o700);

  // Altered in place (same name, other bytes): refetched, the original bytes are back.
  await appendFile(join(first.dir, 'model.onnx'), 'tampered');
  const second = await acquireModelDir(store, uri, cacheDir, { logger: log });
  await second.release();
  assert.equal(second.dir, first.dir);
  assert.deepEqual(await readFile(join(second.dir, 'model.onnx')), original);
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1);
  assert.match(log.lines[0]?.message ?? '', /torn or altered/);

  // Torn (a file cut short, as after a crash mid-copy): refetched too.
  await truncate(join(first.dir, 'model.onnx'), 100);
  await (await acquireModelDir(store, uri, cacheDir, { logger: log })).release();
  assert.deepEqual(await readFile(join(first.dir, 'model.onnx')), original);
  // A manifest from another version: refetched.
  await writeFile(join(first.dir, 'manifest.json'), '{"kind":"rlhf-model-dir","files":[]}');
  await (await acquireModelDir(store, uri, cacheDir, { logger: log })).release();
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 3);
  assert.deepEqual(await readFile(join(first.dir, 'model.onnx')), original);

  // An intact entry is used as it is (no warning).
  await (await acquireModelDir(store, uri, cacheDir, { logger: log })).release();
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 3);
});

test('over its size limit the cache prunes the least recently used entries, never a leased one', async () => {
  const cacheDir = join(dir, 'cache-lru');
  const [a, b, c, d] = await Promise.all(['lru-a', 'lru-b', 'lru-c', 'lru-d'].map((n) => publish(n, 64)));
  const limit = 150 * 1024; // two 64 KiB entries fit, three do not
  const log = recorder();
  const entries = async () => (await readdir(cacheDir)).filter((n) => !n.startsWith('.')).sort();
  const ha = await acquireModelDir(store, a as string, cacheDir, { maxBytes: limit, logger: log });
  await ha.release();
  const hb = await acquireModelDir(store, b as string, cacheDir, { maxBytes: limit, logger: log });
  await hb.release();
  // a was used after b: b is now the least recently used.
  const later = new Date(Date.now() + 5000);
  await utimes(ha.dir, later, later);
  const hc = await acquireModelDir(store, c as string, cacheDir, { maxBytes: limit, logger: log });
  await hc.release();
  const names = await entries();
  assert.equal(names.length, 2);
  assert.ok(!names.some((n) => hb.dir.endsWith(n)), 'the least recently used entry (b) was pruned');
  assert.ok(names.some((n) => ha.dir.endsWith(n)) && names.some((n) => hc.dir.endsWith(n)));
  assert.ok(log.lines.some((l) => l.message.includes('pruned')));

  // A leased entry stays even when it is the oldest and the cache is over its limit.
  const held = await acquireModelDir(store, b as string, cacheDir, { maxBytes: limit });
  const old = new Date(Date.now() - 60_000);
  await utimes(held.dir, old, old);
  const hd = await acquireModelDir(store, d as string, cacheDir, { maxBytes: limit });
  await hd.release();
  assert.ok((await stat(join(held.dir, 'model.onnx'))).isFile(), 'the leased entry is kept');
  await held.release();
  // Released, it is the oldest again: the next prune takes it.
  assert.deepEqual(
    (await pruneModelCache(cacheDir, 100 * 1024)).map((n) => held.dir.endsWith(n)),
    [true],
  );

  // A lease left by a process that died does not hold an entry.
  const left = await entries();
  await writeFile(join(cacheDir, '.leases', `${left[0]}.999999999.0`), '');
  assert.equal((await pruneModelCache(cacheDir, 1)).length, left.length);
  assert.deepEqual(await entries(), []);
});
