import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { ArtifactInfo, ArtifactLocation, ArtifactStore } from '@rlhf/platform';
import { parseRunObject } from '@rlhf/run-spec';
import {
  earlier,
  type RunRef,
  type StageDef,
  type StageIO,
  type StageTable,
  setupUnit,
  stageTable,
  stageUnits,
  unitServices,
} from '@rlhf/workflow';
import { readJsonl, writeJsonl } from './jsonl-artifacts.js';
import type { RunContext, StageUi } from './run-context.js';
import { RunState, type StateKv } from './run-state.js';
import type { ShardExecutor } from './shard-executor.js';
import { stageFunctions } from './stage-functions.js';
import { driveTable, type StageFns } from './table-driver.js';

/** Artifacts in memory, keyed by URI. */
function memoryStore(): ArtifactStore & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const info = (uri: string): ArtifactInfo => ({ uri, size: files.get(uri)?.length ?? 0, digest: '' });
  return {
    files,
    put: async (uri, data) => {
      files.set(uri, data);
      return info(uri);
    },
    putFile: async (uri, path) => {
      files.set(uri, new Uint8Array(await readFile(path)));
      return info(uri);
    },
    get: async (uri) => {
      const data = files.get(uri);
      if (!data) throw new Error(`${uri} not found`);
      return data;
    },
    getFile: async (uri, path) => {
      const data = files.get(uri);
      if (!data) throw new Error(`${uri} not found`);
      await writeFile(path, data);
      return info(uri);
    },
    info: async (uri) => (files.has(uri) ? info(uri) : null),
    delete: async (uri) => {
      files.delete(uri);
    },
    list: async (prefix) => [...files.keys()].filter((k) => k.startsWith(prefix)),
    resolve: async (uri) => ({ uri }) as unknown as ArtifactLocation,
  };
}

/** JetStream KV as RunState uses it, in a Map. */
function memoryKv(): StateKv & { data: Map<string, Uint8Array> } {
  const data = new Map<string, Uint8Array>();
  const kv = {
    data,
    get: async (key: string) => {
      const value = data.get(key);
      return value ? { operation: 'PUT', value } : null;
    },
    put: async (key: string, value: Uint8Array) => {
      data.set(key, value);
      return 0;
    },
    keys: async (filter: string) => {
      const prefix = filter.replace(/>$/, '');
      return (async function* () {
        for (const k of [...data.keys()]) if (k.startsWith(prefix)) yield k;
      })();
    },
    purge: async (key: string) => {
      data.delete(key);
    },
  };
  return kv as unknown as StateKv & { data: Map<string, Uint8Array> };
}

const quietUi: StageUi = { start: () => () => {}, finish: () => {}, skip: () => {}, say: () => {} };

/**
 * The model services, faked: generation gives each prompt a bad and a good review, training
 * stores a model manifest, evaluation one scored sample per prompt. Every call is logged by its token.
 */
function fakeExecutor(store: ArtifactStore, calls: string[]): ShardExecutor {
  return async (spec) => {
    calls.push(`${spec.iteration}.${spec.token}`);
    for (const shard of spec.shards) {
      if (spec.params?.$case === 'generate') {
        const n = spec.params.value.n;
        const prompts = await readJsonl<{ prompt: string }>(store, shard.input);
        await writeJsonl(
          store,
          shard.output,
          prompts.map((p) => {
            const responses = Array.from({ length: n }, (_, k) =>
              k % 2 ? ' truly perfect .' : ' truly awful .',
            );
            return {
              prompt: p.prompt,
              responses,
              response_ids: responses.map((_, k) => [1 + k]),
              finish_reasons: responses.map(() => 'eos'),
            };
          }),
        );
      } else if (spec.params?.$case === 'train') {
        await store.put(`${shard.output}/manifest.json`, new TextEncoder().encode('{}'));
      } else if (spec.params?.$case === 'evaluate') {
        const prompts = await readJsonl<{ prompt: string }>(store, shard.input);
        await writeJsonl(
          store,
          shard.output,
          prompts.map((p, i) => ({
            prompt: p.prompt,
            completion: ' good.',
            completion_ids: [1],
            finish_reason: 'eos',
            endedWithEos: true,
            logp: -1 - spec.iteration,
            logpBaseline: -1,
            proxyReward: spec.iteration,
            gold: spec.iteration,
            grammatical: true,
            words: 1,
            row: shard.firstRow + i,
          })),
        );
      }
    }
  };
}

/** The new stage's own types: it counts the pairs of its iteration. */
interface CountIO {
  count: { inputs: { pairs: number }; result: { counted: number } };
}
type ToyIO = StageIO & CountIO;

const countStage: StageDef<ToyIO, 'count'> = {
  name: 'count',
  phase: 'iteration',
  unit: 'count',
  record: 'count',
  enabled: () => true,
  services: () => [],
  engine: () => 'builtin',
  placement: () => ({ replicas: 1, gpus: 0 }),
  inputs: [{ name: 'pairs', kind: 'dataset' }],
  outputs: [{ name: 'counted', kind: 'figures' }],
  params: [],
  resolve: (v) => ({ pairs: earlier(v.at(v.iteration).pair, 'pair', 'count').pairs }),
};

/** A copy of the stage table with the count stage right after pair. */
const toyTable: StageTable<ToyIO> = stageTable.flatMap<StageTable<ToyIO>[number]>((d) =>
  d.name === 'pair' ? [d, countStage] : [d],
);

async function setupRun() {
  const store = memoryStore();
  const kv = memoryKv();
  const run: RunRef = { namespace: 'default', name: 'toy' };
  const policy = 'nats-obj://rlhf-artifacts/models/pi0';
  const prompts = 'nats-obj://rlhf-artifacts/data/prompts.jsonl';
  await store.put(`${policy}/manifest.json`, new TextEncoder().encode('{}'));
  await writeJsonl(
    store,
    prompts,
    Array.from({ length: 8 }, (_, i) => ({ prompt: i % 2 ? 'the film was' : 'the plot was' })),
  );
  const spec = parseRunObject(
    {
      apiVersion: 'rlhf.dev/v1alpha1',
      kind: 'RLHFRun',
      metadata: { name: 'toy' },
      spec: {
        policy: { model: policy },
        judge: { type: 'gold', task: 'sentiment' },
        prompts: { dataset: prompts, perIteration: 4 },
        iterations: 2,
        generation: { samplesPerPrompt: 2 },
      },
    },
    'toy',
  ).spec;
  const calls: string[] = [];
  const ctx = (): RunContext => ({
    run,
    spec,
    deps: { store, logger: { info() {}, warn() {}, error() {}, debug() {} } as never },
    exec: fakeExecutor(store, calls),
    state: new RunState(kv, run),
    ui: quietUi,
    workers: 1,
  });
  return { store, kv, ctx, calls, spec };
}

test('a stage added to a copy of the table with its function only runs in order, is recorded and resumed', async () => {
  const { kv, ctx, calls, spec } = await setupRun();
  const order: string[] = [];
  const fns: StageFns<ToyIO> = {
    ...stageFunctions,
    count: async (c, inputs) => {
      order.push(`${c.iteration}.count after ${(await c.state.stage(c.iteration, 'pair')) ? 'pair' : '-'}`);
      return { counted: inputs.pairs };
    },
  };
  const first = await driveTable(ctx(), toyTable, fns);
  assert.equal(first.done, true);
  assert.deepEqual(order, ['1.count after pair', '2.count after pair']);
  // It ran between pair and train: train's shards come after it in each iteration.
  assert.deepEqual(calls, [
    '0.evaluate',
    '1.generate',
    '1.train',
    '1.evaluate',
    '2.generate',
    '2.train',
    '2.evaluate',
  ]);
  for (const t of [1, 2]) {
    const counted = first.results.get(t)?.count?.counted;
    assert.equal(counted, first.results.get(t)?.pair?.pairs);
    assert.ok((counted ?? 0) > 0, 'the fake generations give pairs to count');
    const record = kv.data.get(`default.toy.${t}.count`);
    assert.ok(record, `iteration ${t} count has its KV record`);
    assert.equal(JSON.parse(new TextDecoder().decode(record)).result.counted, counted);
  }
  // Run again: every stage is skipped, its result loaded from its record; nothing runs twice.
  calls.length = 0;
  const again = await driveTable(ctx(), toyTable, fns);
  assert.deepEqual(order, ['1.count after pair', '2.count after pair']);
  assert.deepEqual(calls, []);
  assert.equal(again.results.get(2)?.count?.counted, first.results.get(2)?.count?.counted);
  assert.equal(again.results.get(2)?.train?.model, first.results.get(2)?.train?.model);
  // The controller's units come from the same table: one count Job per iteration, after pair.
  const units = stageUnits(spec, toyTable).map((u) => `${u.iteration}.${u.stage}`);
  assert.deepEqual(units, [
    '0.setup',
    '1.generate',
    '1.judge',
    '1.pair',
    '1.count',
    '1.train',
    '1.evaluate',
    '2.generate',
    '2.judge',
    '2.pair',
    '2.count',
    '2.train',
    '2.evaluate',
  ]);
  assert.deepEqual(unitServices(spec, 'count', toyTable), []);
});

test('a stage Job stops after its unit by returning: no stage past the stop point runs', async () => {
  const { kv, ctx, calls } = await setupRun();
  const setup = await driveTable(ctx(), stageTable, stageFunctions, setupUnit().until);
  assert.equal(setup.done, false);
  assert.deepEqual(calls, ['0.evaluate']);
  assert.ok(kv.data.get('default.toy.0.evaluate'));
  assert.ok(kv.data.get('default.toy.plan'), 'the plan record the controller creates iterations from');
  assert.equal(kv.data.get('default.toy.1.generate'), undefined);

  const generate = await driveTable(ctx(), stageTable, stageFunctions, { iteration: 1, stage: 'generate' });
  assert.equal(generate.done, false);
  assert.deepEqual(calls, ['0.evaluate', '1.generate']);
  assert.equal(kv.data.get('default.toy.1.judge'), undefined);

  // The last unit ends the run: done, with every result there for the summary.
  const rest = await driveTable(ctx(), stageTable, stageFunctions, { iteration: 2, stage: 'evaluate' });
  assert.equal(rest.done, true);
  assert.deepEqual(calls, [
    '0.evaluate',
    '1.generate',
    '1.train',
    '1.evaluate',
    '2.generate',
    '2.train',
    '2.evaluate',
  ]);
  assert.ok(rest.results.get(2)?.evaluate?.metrics);
  assert.ok(kv.data.get('default.toy.2.metrics'));
});
