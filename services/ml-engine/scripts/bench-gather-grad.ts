/**
 * What a deterministic embedding gradient costs. The Gather (embedding lookup) gradient was a ScatterND
 * 'add', which ORT's CPU kernel runs over its threads with no regard for repeated indices: with more than
 * one intra-op thread updates are lost and the gradient changes run to run. This compares, on the same
 * machine and in interleaved rounds (timings here are noisy), one training step (forward + backward, one
 * ORT run; the optimizer, identical in all three, left out) of the LM, reward-model and DPO graphs:
 *   scatternd     the old rule, every core (fast, wrong and nondeterministic)
 *   scatternd-1t  the old rule on one intra-op thread (deterministic the blunt way)
 *   scatterelems  the rule in vjp-rules.ts now: ScatterElements 'add', every core
 * For each it prints the median ms per step, steps/s, and how many distinct embedding gradients the
 * repeats gave (1 = deterministic), and checks the new rule against the single-threaded old one bit for bit.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-gather-grad.ts [--rounds N] [--shape ci|small]
 * Defaults: 15 rounds of 3 steps per variant; shape ci = examples/ci-small.yaml's model (d=64, 2 layers,
 * vocab 400) on its batch size, 32 rows (pairs for rm and dpo) of 28 tokens; small = `rlhf bench engine`'s
 * small model (d=128, vocab 512) on 16 rows of 128 tokens.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { median } from '../bench/timing.js';
import {
  architectureOf,
  buildTrainingGraph,
  initWeights,
  type LlamaConfig,
  OrtSession,
  parseLlamaConfig,
  Rng,
  type VjpRule,
  vjpRules,
} from '../src/index.js';
import { dpoFeeds, lmFeeds, rewardFeeds } from '../src/train/batches.js';
import type { Example } from '../src/train/examples.js';

const { values: flags } = parseArgs({
  options: { rounds: { type: 'string', default: '15' }, shape: { type: 'string', default: 'ci' } },
});
const rounds = Number(flags.rounds);
const shapes = {
  ci: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 172, vocab: 400, seq: 28, batch: 32 },
  small: { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 344, vocab: 512, seq: 128, batch: 16 },
} as const;
const shape = shapes[flags.shape as keyof typeof shapes];
if (!shape) throw new Error(`--shape is ci or small, got ${flags.shape}`);

/** The Gather gradient as it was: ScatterND 'add' of dy into zeros (axis 0, the embedding lookup). */
const scatterNdRule: VjpRule = ({ g, dy, x: [data, idx] }) => [
  () => g.scatterND(g.zerosLike(data), g.unsqueeze(idx, [idx.shape.length]), dy, 'add'),
];

function withGatherRule<T>(rule: VjpRule | undefined, build: () => T): T {
  const rules = vjpRules as Record<string, VjpRule>;
  const current = rules.Gather as VjpRule;
  if (rule) rules.Gather = rule;
  try {
    return build();
  } finally {
    rules.Gather = current;
  }
}

const lmConfig = parseLlamaConfig({
  hidden_size: shape.hidden,
  intermediate_size: shape.intermediate,
  num_attention_heads: shape.heads,
  num_key_value_heads: shape.kvHeads,
  num_hidden_layers: shape.layers,
  vocab_size: shape.vocab,
  max_position_embeddings: Math.max(shape.seq, 96),
});
const rmConfig = parseLlamaConfig({ ...lmConfig, architectures: [architectureOf.scalar], num_labels: 1 });

// Token rows drawn like text: a Zipf-ish distribution, so ids repeat within a batch as words do.
const rng = new Rng(7);
const token = () => 3 + Math.min(shape.vocab - 4, Math.floor(shape.vocab * rng.uniform() ** 3));
const row = (): Example => {
  const ids = Array.from({ length: shape.seq }, (_, t) => (t === 0 ? 1 : token()));
  return { ids, targets: ids.map((_, t) => t > shape.seq / 4) };
};
const rows = Array.from({ length: shape.batch }, row);
const pairs = rows.map((chosen) => ({ chosen, rejected: row() }));
const dpo = { beta: 0.1, lossType: 'sigmoid' as const, labelSmoothing: 0, nllWeight: 1 };

interface Objective {
  name: string;
  objective: 'lm' | 'rm' | 'dpo';
  config: LlamaConfig;
  data: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }>;
}
const objectives: Objective[] = [
  { name: 'sft (lm)', objective: 'lm', config: lmConfig, data: lmFeeds(rows, 0) as Objective['data'] },
  {
    name: 'reward model',
    objective: 'rm',
    config: rmConfig,
    data: rewardFeeds(pairs, 0) as Objective['data'],
  },
  {
    name: 'dpo',
    objective: 'dpo',
    config: lmConfig,
    data: dpoFeeds(pairs, 0, new Float32Array(2 * pairs.length).fill(-40)) as Objective['data'],
  },
];
const variants = [
  { name: 'scatternd', rule: scatterNdRule, threads: availableParallelism() },
  { name: 'scatternd-1t', rule: scatterNdRule, threads: 1 },
  { name: 'scatterelems', rule: undefined, threads: availableParallelism() },
] as const;
const EMBED = 'grad.model.embed_tokens.weight';

console.log(
  `model d=${shape.hidden} layers=${shape.layers} vocab=${shape.vocab}, batch ${shape.batch} x ${shape.seq} tokens; ${availableParallelism()} cores; ${rounds} rounds x 3 steps`,
);
console.log('objective      variant        ms/step  steps/s  distinct embedding grads');
for (const o of objectives) {
  const weights = initWeights(o.config, new Rng(3));
  const runs = variants.map((v) => {
    const graph = withGatherRule(v.rule, () => buildTrainingGraph(o.config, { objective: o.objective, dpo }));
    const feeds = {
      ...Object.fromEntries(
        graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
      ),
      ...o.data,
    };
    return {
      v,
      bytes: graph.graph.toBytes(),
      feeds,
      times: [] as number[],
      digests: new Set<string>(),
      last: new Float32Array() as Float32Array<ArrayBufferLike>,
    };
  });
  // One session at a time, made afresh for each block of steps: an idle session's ORT threads spin for a
  // while after each run and would slow whichever session runs next.
  for (let round = 0; round < rounds; round++)
    for (const r of runs) {
      const session = await OrtSession.create(r.bytes, { threads: r.v.threads });
      await session.run(r.feeds); // warm-up
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        const out = await session.run(r.feeds);
        r.times.push(performance.now() - t0);
        const grad = out[EMBED]?.data as Float32Array;
        r.digests.add(
          createHash('sha1')
            .update(new Uint8Array(grad.buffer, grad.byteOffset, grad.byteLength))
            .digest('hex'),
        );
        r.last = grad;
      }
      await session.dispose();
    }
  for (const r of runs) {
    const ms = median(r.times);
    console.log(
      `${o.name.padEnd(14)} ${r.v.name.padEnd(14)} ${ms.toFixed(1).padStart(7)}  ${(1000 / ms).toFixed(1).padStart(7)}  ${r.digests.size}`,
    );
  }
  const [, single, fixed] = runs;
  const same =
    single && fixed && Buffer.compare(Buffer.from(single.last.buffer), Buffer.from(fixed.last.buffer)) === 0;
  console.log(`${''.padEnd(14)} scatterelems == scatternd-1t bit for bit: ${same}`);
}
