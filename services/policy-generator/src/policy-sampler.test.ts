import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initWeights, parseLlamaConfig, Rng, saveModelDir, trainBpe } from '@rlhf/ml-engine';
import { ArtifactRouter, ArtifactSandbox, createLogger, RlhfError } from '@rlhf/platform';
import { type LoadedModel, ModelCache } from '@rlhf/service-kit';
import { Registry } from 'prom-client';
import { PolicySampler, type SampleJob } from './policy-sampler.js';
import { checkSamplingParams, defaultGenerateLimits } from './sampling-settings.js';

let dir: string;
let cache: ModelCache;
let registry: Registry;
let sampler: PolicySampler;
let model: LoadedModel;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-pg-sampler-'));
  const config = parseLlamaConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 1,
    vocab_size: 300,
    max_position_embeddings: 64,
  });
  const tokenizerJson = trainBpe(['the film was great .', 'the plot was dull .'], { vocabSize: 300 });
  await saveModelDir(join(dir, 'policy'), {
    config,
    tokenizerJson,
    weights: initWeights(config, new Rng(3)),
  });
  cache = new ModelCache({
    store: new ArtifactRouter(null, ArtifactSandbox.unrestricted()),
    cacheDir: join(dir, 'cache'),
  });
  registry = new Registry();
  sampler = new PolicySampler(
    cache,
    { windowMs: 0, maxBatchCompletions: 4 },
    registry,
    createLogger('test', { level: 'error' }),
  );
  model = await sampler.model({ uri: `file://${join(dir, 'policy')}`, revision: '', digest: '' });
});

after(async () => {
  await cache?.close();
  await rm(dir, { recursive: true, force: true });
});

const job = (n: number, seed: number, signal?: AbortSignal): SampleJob => ({
  prompts: [[model.model.tokenizer.bosId as number, 5, 6]],
  n,
  firstPromptIndex: 0,
  sampling: checkSamplingParams(
    { seed, maxNewTokens: 40, topK: 0, stop: [], stopTokenIds: [], greedy: false },
    {
      ...defaultGenerateLimits,
    },
  ),
  ...(signal ? { signal } : {}),
});

const counter = async (name: string): Promise<number> =>
  (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** The histogram's observation count and the smallest bucket bound that holds every observation. */
async function histogram(r: Registry, name: string): Promise<{ count: number; max: number }> {
  const values = ((await r.getSingleMetric(name)?.get())?.values ?? []) as Array<{
    metricName?: string;
    labels: { le?: number | string };
    value: number;
  }>;
  const count = values.find((v) => v.metricName === `${name}_count`)?.value ?? 0;
  const full = values.filter(
    (v) => v.metricName === `${name}_bucket` && v.value === count && v.labels.le !== '+Inf',
  );
  return { count, max: Math.min(...full.map((v) => Number(v.labels.le))) };
}
const stepCount = async (r: Registry) => (await histogram(r, 'rlhf_generate_batch_seconds')).count;

test('a request whose deadline passes while queued is dropped before it runs', async () => {
  const before = await counter('rlhf_generate_completions_total');
  const running = sampler.generate(model, job(4, 1)); // fills a batch (4 completions)
  await turn();
  await turn(); // its batch has started and waits on ORT
  const controller = new AbortController();
  const queued = sampler.generate(model, job(3, 2, controller.signal));
  controller.abort(new RlhfError('DEADLINE_EXCEEDED', 'the deadline passed'));
  await assert.rejects(queued, (e: unknown) => e instanceof RlhfError && e.code === 'DEADLINE_EXCEEDED');
  assert.equal((await running).flat().length, 4);
  await sampler.idle();
  assert.equal((await counter('rlhf_generate_completions_total')) - before, 4, 'only the first request ran');
});

test('a request cancelled mid-batch stops sampling its rows and is rejected', async () => {
  const full = await sampler.generate(model, job(2, 7));
  const fullTokens = full.flat().reduce((t, c) => t + c.tokenIds.length, 0);
  const before = await counter('rlhf_generate_tokens_total');
  const controller = new AbortController();
  const cancelled = sampler.generate(model, job(2, 7, controller.signal));
  await turn();
  await turn();
  controller.abort(new RlhfError('CANCELLED', 'the client cancelled the call'));
  await assert.rejects(cancelled, (e: unknown) => e instanceof RlhfError && e.code === 'CANCELLED');
  await sampler.idle();
  const spent = (await counter('rlhf_generate_tokens_total')) - before;
  assert.ok(
    spent < fullTokens,
    `${spent} tokens sampled for the cancelled request, ${fullTokens} when run through`,
  );
});

test('idle() waits for work in flight; after close() new work is refused UNAVAILABLE', async () => {
  const other = new PolicySampler(
    cache,
    { windowMs: 0, maxBatchCompletions: 8 },
    new Registry(),
    createLogger('t', { level: 'error' }),
  );
  let finished = false;
  const work = other.track(async () => {
    const r = await other.generate(model, job(2, 3));
    finished = true;
    return r;
  });
  other.close();
  await other.idle();
  assert.equal(finished, true, 'idle() resolved only after the call in flight finished');
  assert.equal((await work).length, 1);
  await assert.rejects(
    other.track(async () => 1),
    (e: unknown) => e instanceof RlhfError && e.code === 'UNAVAILABLE',
  );
});

test('a seeded request samples the same alone and joining a running batch mid-way; the batch stays within its bound', async () => {
  const reg = new Registry();
  const other = new PolicySampler(
    cache,
    { windowMs: 0, maxBatchCompletions: 4 },
    reg,
    createLogger('t', { level: 'error' }),
  );
  const mine: SampleJob = {
    ...job(3, 11),
    prompts: [
      [model.model.tokenizer.bosId as number, 7],
      [model.model.tokenizer.bosId as number, 8, 9, 10, 11],
    ],
    firstPromptIndex: 4,
  };
  const alone = await other.generate(model, mine);
  const running = other.generate(model, {
    ...job(2, 12),
    prompts: [[model.model.tokenizer.bosId as number, 5, 6, 7, 8]],
  });
  const stepsBefore = await stepCount(reg);
  while ((await stepCount(reg)) - stepsBefore < 5) await turn();
  const joined = other.generate(model, mine);
  const [first, late] = await Promise.all([running, joined]);
  assert.equal(first.flat().length, 2);
  assert.ok(
    first.flat().some((c) => c.tokenIds.length > 6),
    'the running request was still running when the other joined',
  );
  assert.deepEqual(
    late.map((cs) => cs.map((c) => [c.finishReason, ...c.tokenIds])),
    alone.map((cs) => cs.map((c) => [c.finishReason, ...c.tokenIds])),
  );
  late.flat().forEach((c, i) => {
    const want = alone.flat()[i]?.logprobs as number[];
    for (const [t, lp] of c.logprobs.entries())
      assert.ok(Math.abs(lp - (want[t] as number)) < 1e-4, `log-prob ${lp} vs ${want[t]}`);
  });
  // 8 rows wanted the batch at once; it never held more than 4, and it held more than the 2 running rows.
  assert.equal((await histogram(reg, 'rlhf_generate_batch_completions')).max, 4);
});
