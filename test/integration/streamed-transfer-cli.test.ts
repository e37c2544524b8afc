/**
 * `rlhf model push|pull` and `rlhf data push|pull` move files by stream: a 192 MiB weights file goes through
 * nats-obj:// (a real nats-server), s3:// (s3rver) and file:// while the command's peak resident memory
 * stays far below the file's size. Each command runs twice, once with a 1 KiB file and once with the
 * large one; the difference in peak RSS is what moving the large file cost. Reading the file whole would
 * cost at least its size (a file above 2 GiB would not be read at all: Node's one-buffer limit). Streaming
 * still leaves chunks behind for the garbage collector, which V8 reclaims once they pass a few tens of MiB
 * whatever the file's size, hence a file this large: 64 MiB would not tell the two apart.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { natsForTests, startS3Server, type TestNats, type TestS3Server } from '@rlhf/platform/testing';
import { runCli } from '../helpers/cli.js';

const MiB = 2 ** 20;
const LARGE = 192 * MiB;
/**
 * Under half the file's size, so one copy of the file in memory fails it; streaming measured 30-52 MiB
 * here (chunks awaiting the collector), and the baseline run moves by about 10 MiB from run to run.
 */
const ALLOWED_GROWTH = 80 * MiB;
const reporter = fileURLToPath(new URL('../helpers/report-peak-memory.mjs', import.meta.url));

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `bytes` random bytes written 1 MiB at a time. */
async function randomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; done += MiB)
      await handle.write(randomBytes(Math.min(MiB, bytes - done)));
  } finally {
    await handle.close();
  }
}

/** A model directory as push checks it (config.json, model.onnx), its weights in model.onnx.data. */
async function modelDir(path: string, weights: string): Promise<void> {
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'config.json'), '{"model_type":"llama"}\n');
  await writeFile(join(path, 'model.onnx'), randomBytes(4096));
  // A hard link: the same bytes as the data file, without another copy on disk.
  await link(weights, join(path, 'model.onnx.data'));
}

/** Runs an rlhf command that must succeed; its peak RSS in bytes. */
async function peakRss(args: string[], env: Record<string, string>): Promise<number> {
  const r = await runCli(args, { ...env, NODE_OPTIONS: `--import ${reporter}` }, 120_000);
  assert.equal(r.code, 0, r.stderr);
  const m = /peak-rss-kb (\d+)/.exec(r.stderr);
  assert.ok(m, `no peak memory report in ${r.stderr}`);
  return Number(m[1]) * 1024;
}

/** Runs `command(large)` with the 1 KiB and the large file; checks how much more the large one took. */
async function checkGrowth(label: string, command: (large: boolean) => Promise<number>): Promise<void> {
  const small = await command(false);
  const large = await command(true);
  const growth = large - small;
  console.log(
    `${label}: peak RSS ${(small / MiB).toFixed(0)} MiB (1 KiB), ${(large / MiB).toFixed(0)} MiB (${LARGE / MiB} MiB)`,
  );
  assert.ok(
    growth < ALLOWED_GROWTH,
    `${label} grew by ${(growth / MiB).toFixed(1)} MiB moving a ${LARGE / MiB} MiB file (allowed ${ALLOWED_GROWTH / MiB})`,
  );
}

describe('push and pull stream files', () => {
  let nats: TestNats;
  let s3: TestS3Server;
  let dir = '';
  const files: Record<'small' | 'large', string> = { small: '', large: '' };
  const models: Record<'small' | 'large', string> = { small: '', large: '' };
  let env: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-stream-'));
    [nats, s3] = await Promise.all([natsForTests(), startS3Server(['rlhf-models', 'rlhf-data'])]);
    env = s3.env;
    files.small = join(dir, 'small.bin');
    files.large = join(dir, 'large.bin');
    await randomFile(files.small, 1024);
    await randomFile(files.large, LARGE);
    models.small = join(dir, 'model-small');
    models.large = join(dir, 'model-large');
    await modelDir(models.small, files.small);
    await modelDir(models.large, files.large);
  });
  after(async () => {
    await Promise.all([nats?.stop(), s3?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const nameOf = (large: boolean): 'small' | 'large' => (large ? 'large' : 'small');

  for (const base of ['nats-obj://rlhf-data/streamed', 's3://rlhf-data/streamed', 'file://']) {
    const scheme = base.slice(0, base.indexOf(':'));
    it(`rlhf data push and pull through ${scheme}:// hold no file in memory`, async () => {
      const uri = (large: boolean) =>
        scheme === 'file' ? `file://${join(dir, 'volume', nameOf(large))}` : `${base}/${nameOf(large)}`;
      await checkGrowth(`data push ${scheme}`, (large) =>
        peakRss(
          ['data', 'push', '--file', files[nameOf(large)], '--to', uri(large), '--nats-url', nats.url],
          env,
        ),
      );
      const out = (large: boolean) => join(dir, `pulled-${scheme}-${nameOf(large)}`);
      await checkGrowth(`data pull ${scheme}`, (large) =>
        peakRss(['data', 'pull', '--from', uri(large), '--out', out(large), '--nats-url', nats.url], env),
      );
      assert.equal(await sha256(out(true)), await sha256(files.large));
      // Nothing but the pulled files: no temporary file is left beside them.
      const left = (await readdir(dir)).filter((n) => n.startsWith(`pulled-${scheme}-`));
      assert.deepEqual(left.sort(), [`pulled-${scheme}-large`, `pulled-${scheme}-small`]);
    });
  }

  for (const base of ['nats-obj://rlhf-models/streamed', 's3://rlhf-models/streamed']) {
    const scheme = base.slice(0, base.indexOf(':'));
    it(`rlhf model push and pull through ${scheme}:// stream model.onnx.data`, async () => {
      const uri = (large: boolean) => `${base}/${nameOf(large)}`;
      await checkGrowth(`model push ${scheme}`, (large) =>
        peakRss(
          ['model', 'push', '--model', models[nameOf(large)], '--to', uri(large), '--nats-url', nats.url],
          env,
        ),
      );
      const out = (large: boolean) => join(dir, `model-${scheme}-${nameOf(large)}`);
      await checkGrowth(`model pull ${scheme}`, (large) =>
        peakRss(['model', 'pull', '--from', uri(large), '--out', out(large), '--nats-url', nats.url], env),
      );
      for (const name of ['config.json', 'model.onnx', 'model.onnx.data'])
        assert.equal(await sha256(join(out(true), name)), await sha256(join(models.large, name)), name);
    });
  }
});
