/**
 * Reward scoring through gRPC on loopback, the server in its own process (as deployed) and the clients in
 * this one: throughput of one-response Score calls made one at a time, against the same calls from
 * concurrent clients with dynamic batching off and on, and against one request carrying every response;
 * then the p50/p99 latency of a one-response Score on an idle server. Every figure comes from this one run,
 * and each ratio is against the one-at-a-time baseline measured alongside (a server with batching off,
 * so the baseline pays no batching window).
 *
 * Usage: node --import tsx services/reward-model/scripts/bench-score.ts [--responses N] [--clients N]
 *          [--rounds N] [--latency-calls N] [--hidden N] [--layers N]
 * Defaults: 512 responses, 32 clients, 3 rounds (medians printed), 400 latency calls, and the reference
 * task's reward-model shape (hidden 64, 2 layers, 96 positions). Random weights: only shapes matter here.
 * Prints figures only; it asserts nothing about time.
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
import { RewardModelServiceClient, type ScoreRequest, type ScoreResponse } from '@rlhf/proto';

const { values: flags } = parseArgs({
  options: {
    responses: { type: 'string', default: '512' },
    clients: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    'latency-calls': { type: 'string', default: '400' },
    hidden: { type: 'string', default: '64' },
    layers: { type: 'string', default: '2' },
  },
});
const N = Number(flags.responses);
const CLIENTS = Number(flags.clients);
const ROUNDS = Number(flags.rounds);
const LATENCY_CALLS = Number(flags['latency-calls']);
const HIDDEN = Number(flags.hidden);
const LAYERS = Number(flags.layers);

const subjects = ['the film', 'the acting', 'the plot', 'the music', 'the ending', 'the cast'];
const adjectives = ['great', 'superb', 'lovely', 'awful', 'dull', 'boring', 'charming', 'weak'];
const adverbs = ['very', 'really', 'quite', 'so', ''];

/** A review of 1-3 clauses, like the reference task's completions (about 5-20 words). */
function review(rng: Rng): string {
  const clauses = 1 + rng.int(3);
  return Array.from({ length: clauses }, () => {
    const adv = adverbs[rng.int(adverbs.length)] as string;
    return `${subjects[rng.int(subjects.length)]} was ${adv ? `${adv} ` : ''}${adjectives[rng.int(adjectives.length)]}`;
  })
    .join(' and ')
    .concat(' .');
}

async function makeModel(dir: string): Promise<string> {
  const rng = new Rng(1);
  const corpus = Array.from({ length: 400 }, () => review(rng));
  const tokenizerJson = trainBpe(corpus, { vocabSize: 400 });
  const config = parseLlamaConfig({
    architectures: ['LlamaForSequenceClassification'],
    hidden_size: HIDDEN,
    intermediate_size: Math.round((HIDDEN * 8) / 3 / 4) * 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: LAYERS,
    vocab_size: 400,
    max_position_embeddings: 96,
  });
  const out = join(dir, 'rm');
  await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(2)) });
  return out;
}

function call(client: RewardModelServiceClient, req: ScoreRequest): Promise<ScoreResponse> {
  return new Promise((resolve, reject) =>
    client.score(req, (err: grpc.ServiceError | null, res: ScoreResponse) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
};

interface Target extends ServiceProcess {
  client: RewardModelServiceClient;
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
  const client = new RewardModelServiceClient(
    `127.0.0.1:${p.grpcPort}`,
    channel.credentials,
    channel.options,
  );
  return { ...p, client, metricsPort: p.metricsPort as number };
}

/** Sum and count of the server's responses-per-forward-pass histogram. */
const batchTotals = (t: Target) => histogramTotals(t.metricsPort, 'rlhf_reward_batch_responses');

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-bench-score-'));
  const modelDir = await makeModel(dir);
  const model = { uri: `file://${modelDir}`, revision: '', digest: '' };
  const rng = new Rng(3);
  const items = Array.from({ length: N }, () => ({
    prompt: subjects[rng.int(subjects.length)] as string,
    responses: [review(rng)],
  }));
  const one = (i: number): ScoreRequest => ({
    model,
    items: [items[i % N] as ScoreRequest['items'][number]],
    lengthPenalty: 0.001,
  });
  // Off: every call is its own forward pass, however many clients wait, and none waits for company.
  const unbatched = await start(
    { RLHF_SCORE_MAX_BATCH: '1', RLHF_SCORE_BATCH_WINDOW_MS: '0' },
    join(dir, 'c1'),
  );
  const batched = await start({}, join(dir, 'c2'));
  const meanChars = items.reduce((s, it) => s + (it.responses[0] as string).length, 0) / N;

  const sequential = async (t: Target): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await call(t.client, one(i));
    return N / ((performance.now() - t0) / 1000);
  };
  const concurrent = async (t: Target): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < N) await call(t.client, one(next++));
      }),
    );
    return N / ((performance.now() - t0) / 1000);
  };
  const single = async (t: Target): Promise<number> => {
    const t0 = performance.now();
    await call(t.client, { model, items, lengthPenalty: 0.001 });
    return N / ((performance.now() - t0) / 1000);
  };
  /** One-response calls alternating between the servers, so drift on a shared machine hits both alike. */
  const latencies = async (ts: Target[]): Promise<number[][]> => {
    const ms = ts.map(() => [] as number[]);
    for (let i = 0; i < LATENCY_CALLS; i++) {
      for (const [k, t] of ts.entries()) {
        const t0 = performance.now();
        await call(t.client, one(i));
        ms[k]?.push(performance.now() - t0);
      }
    }
    return ms;
  };

  // Warm up: load the model in both servers, let ORT, V8 and the connections settle.
  for (const t of [batched, unbatched]) {
    for (let i = 0; i < 50; i++) await call(t.client, one(i));
    await concurrent(t);
  }
  await single(batched);

  const runs: Record<'sequential' | 'unbatched' | 'batched' | 'single', number[]> = {
    sequential: [],
    unbatched: [],
    batched: [],
    single: [],
  };
  const perPass: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    runs.sequential.push(await sequential(unbatched));
    runs.unbatched.push(await concurrent(unbatched));
    const before = await batchTotals(batched);
    runs.batched.push(await concurrent(batched));
    const after = await batchTotals(batched);
    perPass.push((after.sum - before.sum) / Math.max(1, after.count - before.count));
    runs.single.push(await single(batched));
  }
  const [latBatched = [], latUnbatched = []] = await latencies([batched, unbatched]);

  const base = median(runs.sequential);
  const row = (label: string, xs: number[]) =>
    `${label.padEnd(46)} ${median(xs).toFixed(0).padStart(6)} responses/s ${(median(xs) / base).toFixed(1).padStart(6)}x   (rounds: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
  const lat = (label: string, xs: number[]) =>
    `Score latency, one response, idle server, ${label}: p50 ${quantile(xs, 0.5).toFixed(2)} ms, p99 ${quantile(xs, 0.99).toFixed(2)} ms (${xs.length} sequential calls, alternating servers)`;
  const lines = [
    `reward scoring over gRPC on loopback (server in its own process): ${N} one-response Score calls, mean response ${meanChars.toFixed(0)} chars`,
    `model: hidden ${HIDDEN}, ${LAYERS} layers, vocab 400, random weights; ${availableParallelism()} cores; Node ${process.version}; medians of ${ROUNDS} rounds`,
    row('one at a time (1 client, batching off)', runs.sequential),
    row(`${CLIENTS} concurrent clients, batching off`, runs.unbatched),
    row(`${CLIENTS} concurrent clients, dynamic batching`, runs.batched),
    row(`one Score call carrying all ${N} responses`, runs.single),
    `dynamic batching at ${CLIENTS} clients: ${median(perPass).toFixed(1)} responses per forward pass (median of rounds: ${perPass.map((x) => x.toFixed(1)).join(', ')})`,
    lat('dynamic batching (default)', latBatched),
    lat('batching off', latUnbatched),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  for (const t of [batched, unbatched]) {
    t.client.close();
    t.child.kill('SIGTERM');
    await t.exited;
  }
  await rm(dir, { recursive: true, force: true });
}

await main();
