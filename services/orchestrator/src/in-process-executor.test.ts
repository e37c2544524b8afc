import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  ArtifactRouter,
  ArtifactSandbox,
  createLogger,
  DirectoryObjectStore,
  RlhfError,
} from '@rlhf/platform';
import { Stage, type StageWork } from '@rlhf/proto';
import { type ShardHandler, shardHandler } from '@rlhf/service-kit';
import { fileRunState } from './file-state-kv.js';
import { handlersByToken, inProcessShardExecutor } from './in-process-executor.js';
import type { StageSpec } from './stage-driver.js';

const dir = await mkdtemp(join(tmpdir(), 'rlhf-inproc-'));
after(() => rm(dir, { recursive: true, force: true }));
const store = new ArtifactRouter(
  null,
  ArtifactSandbox.confined({ roots: [dir], nats: true }),
  new DirectoryObjectStore(join(dir, 'objects')),
);
const logger = createLogger('test', { level: 'silent' });
const run = { namespace: 'ns', name: 'r', epoch: 'e1' };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function spec(shards: number, name: string): StageSpec {
  return {
    run,
    iteration: 2,
    token: 'generate',
    stage: Stage.STAGE_GENERATE,
    shards: Array.from({ length: shards }, (_, i) => ({
      input: `nats-obj://rlhf-artifacts/runs/ns/${name}/in-${i}.jsonl`,
      output: `nats-obj://rlhf-artifacts/runs/ns/${name}/out-${i}.jsonl`,
      firstRow: i * 10,
      rows: 10,
    })),
    params: {
      $case: 'generate',
      value: { policy: { uri: 'nats-obj://m/p', revision: '', digest: '' }, n: 3 },
    },
    maxDeliver: 5,
    unit: 'prompts',
  } as StageSpec;
}

/** A handler that writes each shard's output (its input's text upper-cased) and reports half-way progress. */
function upper(seen: StageWork[]): ShardHandler {
  return shardHandler(Stage.STAGE_GENERATE, 'generate', async (work, ctx) => {
    seen.push(work);
    await ctx.progress({ done: 5, total: 10, unit: 'prompts' });
    await store.put(work.outputUri, enc(dec(await store.get(work.inputUri)).toUpperCase()));
    return { outputUri: work.outputUri, items: 10 };
  });
}

test('each shard not yet stored goes to the handler as the StageWork the NATS executor publishes', async () => {
  const s = spec(3, 'resumed');
  for (const [i, sh] of s.shards.entries()) await store.put(sh.input, enc(`shard ${i}`));
  // Shard 1 is done already (a resumed run): it is skipped.
  await store.put(s.shards[1]?.output as string, enc('SHARD 1'));
  const seen: StageWork[] = [];
  const progress: Array<[number, number]> = [];
  const exec = inProcessShardExecutor({ store, logger, handlers: handlersByToken([upper(seen)]) });
  await exec(s, (done, total) => progress.push([done, total]));
  assert.deepEqual(
    seen.map((w) => [w.shardIndex, w.shardCount, w.firstRowIndex, w.key?.iteration, w.key?.runUid]),
    [
      [0, 3, 0, 2, 'e1'],
      [2, 3, 20, 2, 'e1'],
    ],
  );
  assert.equal(seen[0]?.params?.$case, 'generate');
  assert.equal(dec(await store.get(s.shards[2]?.output as string)), 'SHARD 2');
  // Progress counts the stored shard from the start, each shard's partial progress, and ends complete.
  assert.deepEqual(progress[0], [10, 30]);
  assert.ok(progress.some(([d]) => d === 15));
  assert.deepEqual(progress.at(-1), [30, 30]);
});

test('a stage with no handler, a declined shard or a failing shard fails naming the stage and shard', async () => {
  const exec = (handlers: ShardHandler[]) =>
    inProcessShardExecutor({ store, logger, handlers: handlersByToken(handlers) });
  const s = spec(1, 'failing');
  await store.put(s.shards[0]?.input as string, enc('x'));
  await assert.rejects(
    exec([])(s),
    (e: unknown) => e instanceof RlhfError && /no shard handler for the generate/.test(e.message),
  );
  const declining = { ...upper([]), accepts: () => false };
  await assert.rejects(exec([declining])(s), /declines shard 0/);
  const failing = shardHandler(Stage.STAGE_GENERATE, 'generate', async () => {
    throw new RlhfError('INVALID_ARGUMENT', 'bad prompt', { field: 'input_uri' });
  });
  await assert.rejects(
    exec([failing])(s),
    (e: unknown) =>
      e instanceof RlhfError &&
      e.code === 'INVALID_ARGUMENT' &&
      /generate shard 0 failed: .*bad prompt/.test(e.message),
  );
  assert.throws(() => handlersByToken([upper([]), upper([])]), /two shard handlers serve the generate queue/);
});

test('run records in files: RunState reads back what it wrote, and clear forgets only its run', async () => {
  const state = fileRunState(join(dir, 'state'), run);
  assert.equal(await state.stage(1, 'generate'), null);
  const record = {
    stage: 'generate',
    iteration: 1,
    startedAt: 'a',
    finishedAt: 'b',
    seconds: 1,
    result: { outputs: ['x'] },
  };
  await state.finish(record);
  await state.setRun({ specDigest: 'd', epoch: 'e1', phase: 'Running', message: '', updatedAt: 'now' });
  const other = fileRunState(join(dir, 'state'), { namespace: 'ns', name: 'r2' });
  await other.setRun({ specDigest: 'd2', phase: 'Running', message: '', updatedAt: 'now' });
  // A second RunState over the same directory (the next process) sees the records.
  const again = fileRunState(join(dir, 'state'), run);
  assert.deepEqual(await again.stage(1, 'generate'), record);
  assert.equal((await again.runRecord())?.epoch, 'e1');
  await again.clear();
  assert.equal(await again.stage(1, 'generate'), null);
  assert.equal(await again.runRecord(), null);
  assert.equal((await other.runRecord())?.specDigest, 'd2');
});
