/**
 * The reference task's variants (DESIGN.md section 6) over several seeds, in one process each seed, written
 * as a table like the paper's Tables 2 and 4 to docs/RESULTS.md (and the raw reports to docs/results.json):
 *   a  online, RM judge, no length penalty        b  online, RM judge, fitted length penalty
 *   c  offline DPO on annotator-labelled pairs    o  offline best-vs-worst of 8 SFT samples under the RM
 *   g  online, judged by the gold (an upper bound)
 * (p, online judged by the preference model, needs the PM stage in the pipeline; not run yet.)
 *
 *   node --import tsx services/pipeline/scripts/paper-experiment.ts [--seeds 1,2,3] [--variants a,b,c,o,g] [--out docs]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultLoopConfig,
  type LoopResult,
  prepareReferenceTask,
  runLocalIterations,
  runOfflineDpo,
} from '../src/index.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    variants: { type: 'string', default: 'a,b,c,o,g' },
    out: { type: 'string', default: 'docs' },
    'sft-epochs': { type: 'string', default: '4' },
  },
});
const seeds = (values.seeds as string).split(',').map(Number);
const variants = (values.variants as string).split(',');
const started = Date.now();
const say = (m: string): void => {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
};

interface Row {
  seed: number;
  variant: string;
  rmAccuracy: number;
  bayesRate: number;
  lambda: number;
  result: LoopResult;
}
const rows: Row[] = [];
for (const seed of seeds) {
  const setup = await prepareReferenceTask({ seed, sftEpochs: Number(values['sft-epochs']), quick: false });
  say(
    `seed ${seed}: RM accuracy ${setup.rewardModelAccuracy.toFixed(3)} (Bayes ${setup.bayesRate.toFixed(3)}), lambda ${setup.lengthFit.lambda.toFixed(4)}`,
  );
  const annotatorPairs = (setup.files['preferences.jsonl'] ?? '')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  for (const v of variants) {
    const base = {
      policy: setup.policy,
      rewardModel: setup.rewardModel,
      prompts: setup.prompts,
      evalPrompts: setup.evalPrompts,
      oracle: setup.oracle,
    };
    const config = {
      ...defaultLoopConfig,
      seed,
      judge: v === 'g' ? ('gold' as const) : ('reward' as const),
      lengthPenalty: v === 'b' || v === 'o' ? setup.lengthFit.lambda : 0,
    };
    const result =
      v === 'c'
        ? await runOfflineDpo({ ...base, config, source: 'annotators', annotatorPairs })
        : v === 'o'
          ? await runOfflineDpo({ ...base, config, source: 'rm' })
          : await runLocalIterations({ ...base, config });
    const last = result.iterations.at(-1)?.eval;
    say(
      `seed ${seed} variant ${v}: gold ${last?.goldReward?.toFixed(3)} win ${last?.winRate?.toFixed(3)} length ${last?.meanLength.toFixed(1)}`,
    );
    rows.push({
      seed,
      variant: v,
      rmAccuracy: setup.rewardModelAccuracy,
      bayesRate: setup.bayesRate,
      lambda: setup.lengthFit.lambda,
      result,
    });
  }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
const names: Record<string, string> = {
  a: '(a) online, RM, no penalty',
  b: '(b) online, RM + length penalty',
  c: '(c) offline DPO, annotator pairs',
  o: '(o) offline, best-vs-worst of SFT samples',
  g: '(g) online, gold judge',
};
const lines: string[] = [];
lines.push('# Results: the reference task', '');
lines.push(
  `Produced by \`node --import tsx services/pipeline/scripts/paper-experiment.ts --seeds ${seeds.join(',')} --variants ${variants.join(',')}\``,
);
lines.push(
  `in ${((Date.now() - started) / 60000).toFixed(1)} minutes on this machine (2 cores). Every stage runs in one process (the in-process`,
);
lines.push(
  'pipeline of `services/pipeline`), with the models and settings of `rlhf quickstart`: a 2-layer d=64 Llama, 256',
);
lines.push(
  'prompts x 8 samples per iteration, DPO beta 0.1, lr 1e-3, 2 epochs, NLL weight 1, reference pi_0. Means over seeds.',
);
lines.push(
  'Offline variants train once on as many pairs as the online ones use in total; they are listed at iteration 3.',
  '',
);
lines.push(
  `Reward model held-out accuracy ${f(mean(rows.filter((r) => r.variant === rows[0]?.variant).map((r) => r.rmAccuracy)), 3)} against the label model's Bayes rate ${f(mean(rows.filter((r) => r.variant === rows[0]?.variant).map((r) => r.bayesRate)), 3)}; fitted length penalty lambda ${f(mean(rows.filter((r) => r.variant === rows[0]?.variant).map((r) => r.lambda)), 4)} per character.`,
  '',
);
lines.push(
  '| variant | iteration | gold | win rate vs SFT | KL | length (words) | grammatical |',
  '| --- | --- | --- | --- | --- | --- | --- |',
);
const initial = rows.map((r) => r.result.initial);
lines.push(
  `| SFT (pi_0) | 0 | ${f(mean(initial.map((m) => m.goldReward ?? Number.NaN)))} | 0.50 | 0.00 | ${f(mean(initial.map((m) => m.meanLength)), 1)} | ${f(mean(initial.map((m) => m.grammaticalRate ?? Number.NaN)))} |`,
);
for (const v of variants) {
  const mine = rows.filter((r) => r.variant === v);
  const iters = Math.max(...mine.map((r) => r.result.iterations.length));
  for (let t = 0; t < iters; t++) {
    const evs = mine.map((r) => r.result.iterations[t]?.eval).filter((e) => e !== undefined);
    const label = v === 'c' || v === 'o' ? 3 : t + 1;
    lines.push(
      `| ${names[v] ?? v} | ${label} | ${f(mean(evs.map((e) => e.goldReward ?? Number.NaN)))} | ${f(mean(evs.map((e) => e.winRate ?? Number.NaN)))} | ${f(mean(evs.map((e) => e.kl)))} | ${f(mean(evs.map((e) => e.meanLength)), 1)} | ${f(mean(evs.map((e) => e.grammaticalRate ?? Number.NaN)))} |`,
    );
  }
}
await mkdir(values.out as string, { recursive: true });
await writeFile(join(values.out as string, 'RESULTS.md'), `${lines.join('\n')}\n`);
await writeFile(
  join(values.out as string, 'results.json'),
  `${JSON.stringify(rows, (k, v) => (k === 'policies' ? undefined : v), 2)}\n`,
);
say(`wrote ${join(values.out as string, 'RESULTS.md')}`);
