/**
 * Generation through gRPC on loopback, the server in its own process (as deployed) and the clients in this
 * one: throughput (completions/s and tokens/s) of one-prompt Generate calls made one at a time, against the
 * same calls from concurrent clients with batching off and on (continuous batching: a call's row joins the
 * running batch at the next decode step). Every figure comes from this one run, and each ratio is against the
 * one-at-a-time baseline measured alongside (a server with batching off, so the baseline pays no batching
 * window). Rounds alternate the modes, so the headline ratio is the median over rounds of each round's batched
 * rate over that same round's one-at-a-time rate: this machine's speed drifts by a third over seconds, and a
 * round's two measurements are a second apart. The next line compares batching on and off at the same
 * concurrency, and the last one-at-a-time calls with and without the row loop (a third server with
 * RLHF_ROW_LOOP_MAX_PARAMETERS=0, so a lone row decodes one ORT call a token). "Completions per step" is the
 * mean number of rows in a decode step of the batched server over the round, from its metrics.
 *
 * Usage: node --import tsx services/policy-generator/scripts/bench-generate.ts [--requests N] [--clients N]
 *          [--rounds N] [--max-new-tokens N] [--hidden N] [--layers N]
 * Defaults: 192 one-prompt calls (n = 1, temperature 1, 32 new tokens, a seed per call), 32 clients,
 * 5 rounds (medians printed), and the reference task's policy shape (hidden 64, 2 layers, 96 positions).
 * Random weights: only shapes matter here (a random policy almost never ends early, so every completion is
 * max-new-tokens long). Prints figures only; it asserts nothing about time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { initWeights, parseLlamaConfig, Rng, saveModelDir, trainBpe } from '@rlhf/ml-engine';
import { clientChannel } from '@rlhf/platform';
import { histogramTotals, type ServiceProcess, startServiceProcess } from '@rlhf/platform/testing';
import {
  type GenerateRequest,
  GenerateRequest as GenerateRequestCodec,
  type GenerateResponse,
  PolicyGeneratorServiceClient,
} from '@rlhf/proto';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '192' },
    clients: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    'max-new-tokens': { type: 'string', default: '32' },
    hidden: { type: 'string', default: '64' },
    layers: { type: 'string', default: '2' },
  },
});
const N = Number(flags.requests);
const CLIENTS = Number(flags.clients);
const ROUNDS = Number(flags.rounds);
const MAX_NEW = Number(flags['max-new-tokens']);
const HIDDEN = Number(flags.hidden);
const LAYERS = Number(flags.layers);

const subjects = ['the film', 'the acting', 'the plot', 'the music', 'the ending', 'the cast'];
const adjectives = ['great', 'superb', 'lovely', 'awful', 'dull', 'boring', 'charming', 'weak'];

async function makeModel(dir: string): Promise<string> {
  const rng = new Rng(1);
  const corpus = Array.from(
    { length: 400 },
    () =>
      `${subjects[rng.int(subjects.length)]} was ${adjectives[rng.int(adjectives.length)]} and ${subjects[rng.int(subjects.length)]} was ${adjectives[rng.int(adjectives.length)]} .`,
  );
  const tokenizerJson = trainBpe(corpus, { vocabSize: 400 });
  const config = parseLlamaConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_size: HIDDEN,
    intermediate_size: Math.round((HIDDEN * 8) / 3 / 4) * 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: LAYERS,
    vocab_size: 400,
    max_position_embeddings: 96,
  });
  const out = join(dir, 'policy');
  await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(2)) });
  return out;
}

function call(client: PolicyGeneratorServiceClient, req: GenerateRequest): Promise<GenerateResponse> {
  return new Promise((resolve, reject) =>
    client.generate(req, (err: grpc.ServiceError | null, res: GenerateResponse) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
};

interface Target extends ServiceProcess {
  client: PolicyGeneratorServiceClient;
  metricsPort: number;
}

const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** Starts `src/main.ts` of this service as a child process with the given environment. */
async function start(env: Record<string, string>, cacheDir: string): Promise<Target> {
  // The cache sits in the bench's directory, next to the model the requests name (file://).
  const p = await startServiceProcess(mainTs, {
    env: { ...env, RLHF_MODEL_CACHE: cacheDir },
    artifactRoots: [dirname(cacheDir)],
  });
  // The child inherits this environment, RLHF_AUTH_TOKEN_FILE / RLHF_AUTH_TOKEN included: send the same token.
  const channel = clientChannel({});
  const client = new PolicyGeneratorServiceClient(
    `127.0.0.1:${p.grpcPort}`,
    channel.credentials,
    channel.options,
  );
  return { ...p, client, metricsPort: p.metricsPort as number };
}

/** Sum and count of the server's completions-per-decode-step histogram (rows in each step's decode run). */
const batchTotals = (t: Target) => histogramTotals(t.metricsPort, 'rlhf_generate_batch_completions');

interface Rate {
  completions: number;
  tokens: number;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-bench-generate-'));
  const modelDir = await makeModel(dir);
  const model = { uri: `file://${modelDir}`, revision: '', digest: '' };
  const rng = new Rng(3);
  const prompts = Array.from({ length: N }, () => `${subjects[rng.int(subjects.length)]} was`);
  const one = (i: number): GenerateRequest =>
    GenerateRequestCodec.fromPartial({
      model,
      prompts: [prompts[i % N] as string],
      n: 1,
      sampling: { temperature: 1, maxNewTokens: MAX_NEW, seed: i },
    });
  // Off: every call is its own generation pass, however many clients wait, and none waits for company.
  const unbatched = await start(
    { RLHF_GENERATE_MAX_BATCH: '1', RLHF_GENERATE_BATCH_WINDOW_MS: '0' },
    join(dir, 'c1'),
  );
  const batched = await start({}, join(dir, 'c2'));
  // The same as `unbatched` without the row loop: a lone row decodes one ORT call a token.
  const stepwise = await start(
    { RLHF_GENERATE_MAX_BATCH: '1', RLHF_GENERATE_BATCH_WINDOW_MS: '0', RLHF_ROW_LOOP_MAX_PARAMETERS: '0' },
    join(dir, 'c3'),
  );

  const tokensOf = (res: GenerateResponse) =>
    res.results.reduce((t, r) => t + r.completions.reduce((u, c) => u + c.tokenIds.length, 0), 0);
  const sequential = async (t: Target): Promise<Rate> => {
    let tokens = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) tokens += tokensOf(await call(t.client, one(i)));
    const s = (performance.now() - t0) / 1000;
    return { completions: N / s, tokens: tokens / s };
  };
  const concurrent = async (t: Target): Promise<Rate> => {
    let next = 0;
    let tokens = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < N) {
          const got = tokensOf(await call(t.client, one(next++)));
          tokens += got;
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    return { completions: N / s, tokens: tokens / s };
  };

  // Warm up: load the model in both servers, let ORT, V8 and the connections settle. The batched server goes
  // last, so that it idles no longer before its first timed round than before the others: warmed first, its
  // first timed round was its slowest in most runs.
  for (const t of [stepwise, unbatched, batched]) {
    for (let i = 0; i < 20; i++) await call(t.client, one(i));
    for (let r = 0; r < 3; r++) await concurrent(t);
  }

  const runs: Record<'stepwise' | 'sequential' | 'unbatched' | 'batched', Rate[]> = {
    stepwise: [],
    sequential: [],
    unbatched: [],
    batched: [],
  };
  const perStep: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    runs.stepwise.push(await sequential(stepwise));
    runs.sequential.push(await sequential(unbatched));
    runs.unbatched.push(await concurrent(unbatched));
    const before = await batchTotals(batched);
    runs.batched.push(await concurrent(batched));
    const after = await batchTotals(batched);
    perStep.push((after.sum - before.sum) / Math.max(1, after.count - before.count));
  }

  const base = median(runs.sequential.map((x) => x.completions));
  const row = (label: string, xs: Rate[]) => {
    const c = median(xs.map((x) => x.completions));
    const tok = median(xs.map((x) => x.tokens));
    return `${label.padEnd(44)} ${c.toFixed(1).padStart(7)} completions/s ${tok.toFixed(0).padStart(7)} tokens/s ${(c / base).toFixed(1).padStart(6)}x   (rounds: ${xs.map((x) => x.completions.toFixed(1)).join(', ')})`;
  };
  const paired = (xs: Rate[], ys: Rate[]) => xs.map((x, r) => x.completions / (ys[r] as Rate).completions);
  const vsOne = paired(runs.batched, runs.sequential);
  const onOff = paired(runs.batched, runs.unbatched);
  const rowLoop = paired(runs.sequential, runs.stepwise);
  const lines = [
    `policy generation over gRPC on loopback (server in its own process): ${N} one-prompt Generate calls, n = 1, ${MAX_NEW} new tokens each, temperature 1`,
    `model: hidden ${HIDDEN}, ${LAYERS} layers, vocab 400, random weights, KV cache; ${availableParallelism()} cores; Node ${process.version}; medians of ${ROUNDS} rounds`,
    row('one at a time (1 client, batching off)', runs.sequential),
    row('  the same, no row loop (a call a token)', runs.stepwise),
    row(`${CLIENTS} concurrent clients, batching off`, runs.unbatched),
    row(`${CLIENTS} concurrent clients, continuous batching`, runs.batched),
    `continuous batching at ${CLIENTS} clients: ${median(perStep).toFixed(1)} completions per step (mean rows in a decode step; median of rounds: ${perStep.map((x) => x.toFixed(1)).join(', ')})`,
    `ratio, continuous batching vs one at a time: ${median(vsOne).toFixed(1)}x (median of rounds: ${vsOne.map((x) => x.toFixed(1)).join(', ')}); vs ${CLIENTS} clients with batching off: ${median(onOff).toFixed(1)}x`,
    `ratio, one at a time with the row loop vs without: ${median(rowLoop).toFixed(2)}x (median of rounds: ${rowLoop.map((x) => x.toFixed(2)).join(', ')})`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  for (const t of [batched, unbatched, stepwise]) {
    t.client.close();
    t.child.kill('SIGTERM');
    await t.exited;
  }
  await rm(dir, { recursive: true, force: true });
}

await main();
