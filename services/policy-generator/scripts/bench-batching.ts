/**
 * The two ways of batching generation, in one process and without gRPC, so only the batching differs:
 * per-pass batching (the MicroBatcher over generate(), as the policy generator did before: calls that arrive
 * while a pass runs wait for the whole pass) and continuous batching (the engine's DecodeLoop: rows join at
 * the next decode step and leave when they finish), both with a 5 ms window and 64 rows at most. Simulated
 * clients each make one-prompt calls in a loop, pausing a random 0..think-ms between an answer and their next
 * call (standing for the round trip a real client pays); the baseline is one such client with no batching.
 * Settings are alternated within every round, and medians of the rounds printed with every round's figure.
 *
 * Usage: node --import tsx services/policy-generator/scripts/bench-batching.ts [--requests N] [--clients N]
 *          [--rounds N] [--max-new-tokens N] [--think-ms N] [--threads N]
 * Defaults: 192 calls (n = 1, temperature 1, 32 new tokens, a seed per call), 32 clients, 5 rounds, think
 * 0..10 ms, ORT's default threads; the reference task's policy shape (hidden 64, 2 layers) with random weights.
 * Prints figures only; it asserts nothing about time.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import {
  buildInferenceModel,
  DecodeLoop,
  type GenerateRequest,
  generate,
  inferenceSessionOptions,
  initWeights,
  OrtSession,
  parseLlamaConfig,
  Rng,
  type Sample,
} from '@rlhf/ml-engine';
import { MicroBatcher } from '@rlhf/service-kit';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '192' },
    clients: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    'max-new-tokens': { type: 'string', default: '32' },
    'think-ms': { type: 'string', default: '10' },
    threads: { type: 'string' },
  },
});
const N = Number(flags.requests);
const CLIENTS = Number(flags.clients);
const ROUNDS = Number(flags.rounds);
const MAX_NEW = Number(flags['max-new-tokens']);
const THINK = Number(flags['think-ms']);

const config = parseLlamaConfig({
  architectures: ['LlamaForCausalLM'],
  hidden_size: 64,
  intermediate_size: 172,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 400,
  max_position_embeddings: 96,
});
const session = await OrtSession.create(buildInferenceModel(config, initWeights(config, new Rng(2))), {
  ...inferenceSessionOptions,
  ...(flags.threads ? { threads: Number(flags.threads) } : {}),
});
// An EOS id outside the vocabulary: every completion is max-new-tokens long, as with the gRPC bench.
const ids = { eosId: config.vocab_size, padId: 1 };
const defaults = { temperature: 1, topP: 1, topK: 0, greedy: false, maxNewTokens: MAX_NEW, seed: 0 };
const rng = new Rng(3);
const prompts = Array.from({ length: N }, () => [0, 2 + rng.int(300), 2 + rng.int(300), 2 + rng.int(300)]);
const call = (i: number): GenerateRequest => ({
  promptIds: prompts[i % N] as number[],
  n: 1,
  promptIndex: i,
  options: { seed: i },
});

type Submit = (req: GenerateRequest) => Promise<Sample[]>;

interface Mode {
  label: string;
  clients: number;
  /** A fresh submitter and the number of batched runs it made, for rows per run. */
  make(): { submit: Submit; rows(): number; runs(): number };
}

const perPass =
  (maxBatch: number): Mode['make'] =>
  () => {
    let rows = 0;
    let runs = 0;
    const batcher = new MicroBatcher<GenerateRequest, Sample[]>({
      windowMs: maxBatch > 1 ? 5 : 0,
      maxBatchSize: maxBatch,
      sizeOf: (r) => r.n,
      onBatch: ({ size }) => {
        rows += size;
        runs++;
      },
      run: async (batch) => {
        const all = await generate(session, config, batch, { ...defaults, ...ids, maxBatch });
        return batch.map((_, i) => all.slice(i, i + 1));
      },
    });
    return { submit: (r) => batcher.submit(r), rows: () => rows, runs: () => runs };
  };

const continuous: Mode['make'] = () => {
  let rows = 0;
  let runs = 0;
  const loop = new DecodeLoop(session, config, {
    ...ids,
    maxBatch: 64,
    windowMs: 5,
    onStep: (s) => {
      if (s.rows === 0) return;
      rows += s.rows;
      runs++;
    },
  });
  return { submit: (r) => loop.submit([r], defaults), rows: () => rows, runs: () => runs };
};

const modes: Mode[] = [
  { label: 'one at a time (1 client, no batching)', clients: 1, make: perPass(1) },
  { label: `${CLIENTS} clients, per-pass batching`, clients: CLIENTS, make: perPass(64) },
  { label: `${CLIENTS} clients, continuous batching`, clients: CLIENTS, make: continuous },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(mode: Mode, calls: number): Promise<{ rate: number; rowsPerRun: number }> {
  const s = mode.make();
  const think = new Rng(7);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: mode.clients }, async () => {
      while (next < calls) {
        await s.submit(call(next++));
        await sleep(think.uniform() * THINK);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { rate: calls / seconds, rowsPerRun: s.rows() / Math.max(1, s.runs()) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
};

// Warm-up, then rounds with the order of the settings rotated.
for (const m of modes) await measure(m, Math.min(N, 64));
const rates = modes.map(() => [] as number[]);
const rowsPerRun = modes.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < modes.length; k++) {
    const i = (k + r) % modes.length;
    const mode = modes[i] as Mode;
    // The single client makes a quarter of the calls: same per-call figure, a quarter of the time.
    const got = await measure(mode, mode.clients === 1 ? Math.max(8, Math.round(N / 4)) : N);
    rates[i]?.push(got.rate);
    rowsPerRun[i]?.push(got.rowsPerRun);
  }
}
const base = median(rates[0] as number[]);
const lines = [
  `batching in one process, no gRPC: ${N} one-prompt calls, n = 1, ${MAX_NEW} new tokens, temperature 1, clients pausing 0..${THINK} ms between calls`,
  `model: hidden 64, 2 layers, vocab 400, random weights, KV cache; ORT threads ${flags.threads ?? 'default'}; ${availableParallelism()} cores; Node ${process.version}; medians of ${ROUNDS} rounds`,
  ...modes.map((m, i) => {
    const xs = rates[i] as number[];
    const c = median(xs);
    const per =
      i === 0
        ? ''
        : `   ${median(rowsPerRun[i] as number[]).toFixed(1)} rows per ${i === 1 ? 'pass' : 'step'}`;
    return `${m.label.padEnd(40)} ${c.toFixed(1).padStart(7)} completions/s ${(c / base).toFixed(1).padStart(5)}x${per}   (rounds: ${xs.map((x) => x.toFixed(1)).join(', ')})`;
  }),
];
process.stdout.write(`${lines.join('\n')}\n`);
await session.dispose();
