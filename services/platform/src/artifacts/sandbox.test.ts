import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { ARTIFACT_MARKER, markPlatformMade, ownerOf } from './platform-made.js';
import { ArtifactRouter } from './router.js';
import { ArtifactSandbox } from './sandbox.js';

async function tree(t: { after(fn: () => Promise<void>): void }) {
  const base = await mkdtemp(join(tmpdir(), 'rlhf-sandbox-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(join(root, 'data'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(root, 'data', 'pairs.jsonl'), '{"prompt":"p"}\n');
  await writeFile(join(outside, 'secret.txt'), 'TOP-SECRET-VALUE\n');
  await mkdir(join(outside, 'dir'));
  return { base, root, outside };
}

/** Rejects with `code` naming `field`, and the message never carries the file's content. */
async function refused(p: Promise<unknown>, code: string, field: string): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RlhfError, String(e));
    assert.equal(e.code, code, e.describe());
    assert.equal(e.field, field);
    assert.doesNotMatch(e.describe(), /TOP-SECRET/);
    message = e.message;
    return true;
  });
  return message;
}

test('file:// inside a root resolves; outside, `..` and unknown roots are PERMISSION_DENIED naming the field', async (t) => {
  const { root, outside } = await tree(t);
  const box = ArtifactSandbox.confined({ roots: [root], nats: false });
  assert.deepEqual(await box.resolve(`file://${root}/data/pairs.jsonl`, 'dataset.uri', 'read'), {
    scheme: 'file',
    path: join(root, 'data', 'pairs.jsonl'),
  });
  assert.equal((await box.resolve(`${root}/data/new.jsonl`, 'f', 'write')).scheme, 'file');

  // A file, a directory and nothing at all outside the roots: one status, one message shape.
  const shapes = new Set<string>();
  for (const p of [join(outside, 'secret.txt'), join(outside, 'dir'), join(outside, 'absent')]) {
    const m = await refused(
      box.resolve(`file://${p}`, 'dataset.uri', 'read'),
      'PERMISSION_DENIED',
      'dataset.uri',
    );
    shapes.add(m.replace(p, '<path>'));
  }
  assert.equal(shapes.size, 1, [...shapes].join(' | '));
  await refused(box.resolve('file:///etc/passwd', 'dataset.uri', 'read'), 'PERMISSION_DENIED', 'dataset.uri');
  // A sibling whose name starts with the root's is not inside it.
  await refused(box.resolve(`file://${root}-evil/x`, 'o', 'write'), 'PERMISSION_DENIED', 'o');
  for (const dots of [
    `file://${root}/../outside/secret.txt`,
    `file://${root}/data/../../outside`,
    `file://${root}/%2e%2e/outside/secret.txt`,
    `file://${root}/.%2E/outside`,
    `${root}/data/../data/pairs.jsonl`,
  ])
    await refused(box.resolve(dots, 'output_uri', 'write'), 'PERMISSION_DENIED', 'output_uri');
});

test('a symlink inside a root that leads out is refused, for reads and for writes below it', async (t) => {
  const { root, outside } = await tree(t);
  await symlink(outside, join(root, 'link-out'));
  await symlink(join(outside, 'secret.txt'), join(root, 'secret-link'));
  await symlink(join(outside, 'not-yet'), join(root, 'dangling'));
  await symlink(join(root, 'data'), join(root, 'link-in'));
  const box = ArtifactSandbox.confined({ roots: [root], nats: false });
  await refused(
    box.resolve(`file://${root}/secret-link`, 'dataset.uri', 'read'),
    'PERMISSION_DENIED',
    'dataset.uri',
  );
  await refused(
    box.resolve(`file://${root}/link-out/new/model`, 'output_uri', 'write'),
    'PERMISSION_DENIED',
    'output_uri',
  );
  await refused(
    box.resolve(`file://${root}/dangling`, 'output_uri', 'write'),
    'PERMISSION_DENIED',
    'output_uri',
  );
  // A symlink that stays inside the roots is fine.
  assert.equal((await box.resolve(`file://${root}/link-in/pairs.jsonl`, 'd', 'read')).scheme, 'file');
  // A root given through a symlink still contains what it holds.
  await symlink(root, join(outside, 'root-link'));
  const viaLink = ArtifactSandbox.confined({ roots: [join(outside, 'root-link')], nats: false });
  assert.equal(
    (await viaLink.resolve(`file://${outside}/root-link/data/pairs.jsonl`, 'd', 'read')).scheme,
    'file',
  );
});

test('schemes the process was not configured for: no roots means no file://, no NATS means no nats-obj://', async (t) => {
  const { root } = await tree(t);
  const none = ArtifactSandbox.confined({ roots: [], nats: true });
  const m = await refused(
    none.resolve(`file://${root}/data/pairs.jsonl`, 'policy.uri', 'read'),
    'PERMISSION_DENIED',
    'policy.uri',
  );
  assert.match(m, /--artifact-root/);
  assert.equal((await none.resolve('nats-obj://b/k', 'policy.uri', 'read')).scheme, 'nats-obj');
  const noNats = ArtifactSandbox.confined({ roots: [root], nats: false });
  await refused(noNats.resolve('nats-obj://b/k', 'policy.uri', 'read'), 'PERMISSION_DENIED', 'policy.uri');
  // nats-obj keys keep their own checks.
  await refused(none.resolve('nats-obj://b/../k', 'policy.uri', 'read'), 'INVALID_ARGUMENT', 'policy.uri');
  // The user's own process is not confined.
  assert.equal(
    (await ArtifactSandbox.unrestricted().resolve('file:///etc/passwd', 'f', 'read')).scheme,
    'file',
  );
});

test('writes: an existing target must be platform-made; files never become directories', async (t) => {
  const { root } = await tree(t);
  const box = ArtifactSandbox.confined({ roots: [root], nats: false });
  await mkdir(join(root, 'users-dir'));
  await writeFile(join(root, 'users-dir', 'keep.txt'), 'mine');
  await refused(
    box.resolve(`file://${root}/users-dir`, 'output_uri', 'write'),
    'ALREADY_EXISTS',
    'output_uri',
  );
  await refused(
    box.resolve(`file://${root}/data/pairs.jsonl`, 'output_uri', 'write'),
    'ALREADY_EXISTS',
    'output_uri',
  );
  await mkdir(join(root, 'made'));
  await markPlatformMade(join(root, 'made'));
  assert.equal(await ownerOf(join(root, 'made')), 'platform');
  assert.equal((await box.resolve(`file://${root}/made`, 'output_uri', 'write')).scheme, 'file');
  // The sandbox only reads to decide: nothing was written anywhere.
  assert.deepEqual((await readdir(join(root, 'users-dir'))).sort(), ['keep.txt']);
});

test('the router under a confined sandbox: data files only into platform-made directories, deletes only its own', async (t) => {
  const { root, outside } = await tree(t);
  const store = new ArtifactRouter(null, ArtifactSandbox.confined({ roots: [root], nats: false }));
  const data = new TextEncoder().encode('{"a":1}\n');
  // A new directory is made and marked.
  await store.put(`file://${root}/runs/x/shard-0.jsonl`, data);
  assert.deepEqual((await readdir(join(root, 'runs', 'x'))).sort(), [ARTIFACT_MARKER, 'shard-0.jsonl']);
  await store.put(`file://${root}/runs/x/shard-0.jsonl`, data); // its own file: replaced
  assert.deepEqual(await store.get(`file://${root}/runs/x/shard-0.jsonl`), data);
  assert.deepEqual(await store.list(`file://${root}/runs/x/`), [`file://${root}/runs/x/shard-0.jsonl`]);
  // Not into a directory someone else made, and not over their file.
  await refused(store.put(`file://${root}/data/new.jsonl`, data), 'PERMISSION_DENIED', 'uri');
  await refused(store.put(`file://${root}/data/pairs.jsonl`, data), 'ALREADY_EXISTS', 'uri');
  await refused(store.delete(`file://${root}/data/pairs.jsonl`), 'ALREADY_EXISTS', 'uri');
  await refused(store.get(`file://${outside}/secret.txt`), 'PERMISSION_DENIED', 'uri');
  assert.equal(await readFile(join(root, 'data', 'pairs.jsonl'), 'utf8'), '{"prompt":"p"}\n');
  await store.delete(`file://${root}/runs/x/shard-0.jsonl`);
  assert.equal(await store.info(`file://${root}/runs/x/shard-0.jsonl`), null);
});
