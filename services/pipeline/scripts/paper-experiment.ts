/**
 * The reference task's variants (DESIGN.md section 6) over several seeds, in one process each seed, written
 * as a table like the paper's Tables 2 and 4 to docs/RESULTS.md (and the raw reports to docs/results.json):
 *   a  online, RM judge, no length penalty        b  online, RM judge, fitted length penalty
 *   c  offline DPO on annotator-labelled pairs    o  offline best-vs-worst of 8 SFT samples under the RM
 *   g  online, judged by the gold (an upper bound)
 *   p  online, judged by the pairwise preference model (knock-out tournament; no length penalty applies)
 * The goals of the pipeline issue (iteration 3, means over seeds) are checked and tabled from the same rows.
 *
 *   node --import tsx services/pipeline/scripts/paper-experiment.ts [--seeds 1,2,3] [--variants a,b,c,o,g] [--out docs]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultLoopConfig,
  type EvalMetrics,
  type LoopResult,
  prepareReferenceTask,
  referenceRecipe,
  runLocalIterations,
  runOfflineDpo,
} from '../src/index.js';

const usage = `Usage: node --import tsx services/pipeline/scripts/paper-experiment.ts [options]
  --seeds 1,2,3          seeds (data, models, sampling); one setup (SFT, RM, length fit) per seed
  --variants a,b,c,o,g   a: online RM no penalty, b: online RM + fitted penalty, c: offline annotator pairs,
                         o: offline best-vs-worst of SFT samples, g: online gold judge,
                         p: online preference-model tournament (trains a PM per seed)
  --out docs             where RESULTS.md and results.json go
  --sft-epochs N         override the recipe's SFT epochs (${referenceRecipe.sft.epochs})
  --help                 this text`;
const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    variants: { type: 'string', default: 'a,b,c,o,g' },
    out: { type: 'string', default: 'docs' },
    'sft-epochs': { type: 'string', default: String(referenceRecipe.sft.epochs) },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const seeds = (values.seeds as string).split(',').map(Number);
const variants = (values.variants as string).split(',');
for (const v of variants)
  if (!['a', 'b', 'c', 'o', 'g', 'p'].includes(v)) {
    process.stderr.write(`unknown variant ${v}\n${usage}\n`);
    process.exit(2);
  }
const started = Date.now();
const say = (m: string): void => {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
};

interface Row {
  seed: number;
  variant: string;
  rmAccuracy: number;
  pmAccuracy: number | null;
  bayesRate: number;
  lambda: number;
  lambdaFitOver: string;
  sftGrammatical: number | null;
  seconds: number;
  result: LoopResult;
}
const rows: Row[] = [];
for (const seed of seeds) {
  const setup = await prepareReferenceTask({
    seed,
    sftEpochs: Number(values['sft-epochs']),
    quick: false,
    preferenceModel: variants.includes('p'),
  });
  say(
    `seed ${seed}: RM accuracy ${setup.rewardModelAccuracy.toFixed(3)}${setup.preferenceModelAccuracy === undefined ? '' : `, PM ${setup.preferenceModelAccuracy.toFixed(3)}`} (Bayes ${setup.bayesRate.toFixed(3)}), lambda ${setup.lengthFit.lambda.toFixed(4)} (over ${setup.lengthFit.samples} ${setup.lengthFit.over} samples)`,
  );
  const annotatorPairs = (setup.files['preferences.jsonl'] ?? '')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  for (const v of variants) {
    const clock = Date.now();
    const base = {
      policy: setup.policy,
      rewardModel: setup.rewardModel,
      prompts: setup.prompts,
      evalPrompts: setup.evalPrompts,
      oracle: setup.oracle,
      ...(setup.preferenceModel ? { preferenceModel: setup.preferenceModel } : {}),
    };
    const config = {
      ...defaultLoopConfig,
      seed,
      judge: v === 'g' ? ('gold' as const) : v === 'p' ? ('preference' as const) : ('reward' as const),
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
      pmAccuracy: setup.preferenceModelAccuracy ?? null,
      bayesRate: setup.bayesRate,
      lambda: setup.lengthFit.lambda,
      lambdaFitOver: setup.lengthFit.over,
      sftGrammatical: result.initial.grammaticalRate,
      seconds: (Date.now() - clock) / 1000,
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
  p: '(p) online, PM tournament, no penalty',
};
const minutes = (Date.now() - started) / 60000;
const c = defaultLoopConfig;
const m = referenceRecipe.model;
const lines: string[] = [];
lines.push('# Results: the reference task', '');
lines.push(
  `Produced by \`node --import tsx services/pipeline/scripts/paper-experiment.ts --seeds ${seeds.join(',')} --variants ${variants.join(',')}\``,
  `in ${minutes.toFixed(1)} minutes on this machine (2 cores, shared). Every stage runs in one process (the in-process`,
  'pipeline of `services/pipeline`), with the recipe of `rlhf quickstart` and `examples/quickstart.yaml`: a',
  `${m.numHiddenLayers}-layer d=${m.hiddenSize} Llama with a ${m.vocabSize}-token BPE (every word of the grammar one token), SFT ${referenceRecipe.sft.epochs} epochs at lr ${referenceRecipe.sft.learningRate},`,
  `a Bradley-Terry RM ${referenceRecipe.rewardModel.epochs} epochs at lr ${referenceRecipe.rewardModel.learningRate} from the SFT backbone, ${c.promptsPerIteration} prompts x ${c.samplesPerPrompt} samples per iteration,`,
  `DPO beta ${c.dpo.dpo.beta}, lr ${c.dpo.lr}, ${c.dpo.epochs} epochs, batch ${c.dpo.batchSize}, NLL weight ${c.dpo.dpo.nllWeight}, reference pi_0. Means over seeds.`,
  'Offline variants train once on as many pairs as the online ones use in total; they are listed at iteration 3.',
  '',
);
const setupRows = rows.filter((r) => r.variant === rows[0]?.variant);
lines.push(
  `Reward model held-out accuracy ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)}${variants.includes('p') ? ` (preference model ${f(mean(setupRows.map((r) => r.pmAccuracy ?? Number.NaN)), 3)})` : ''} against the label model's Bayes rate ${f(mean(setupRows.map((r) => r.bayesRate)), 3)}; fitted length penalty lambda ${f(mean(setupRows.map((r) => r.lambda)), 4)} per character (per seed: ${setupRows.map((r) => f(r.lambda, 4)).join(', ')}; fitted over pi_0's ${[...new Set(setupRows.map((r) => r.lambdaFitOver))].join('/')} samples).`,
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
const evalsAt = (v: string, t: number): EvalMetrics[] =>
  rows
    .filter((r) => r.variant === v)
    .map((r) => r.result.iterations[t]?.eval)
    .filter((e) => e !== undefined);
for (const v of variants) {
  const mine = rows.filter((r) => r.variant === v);
  const iters = Math.max(...mine.map((r) => r.result.iterations.length));
  for (let t = 0; t < iters; t++) {
    const evs = evalsAt(v, t);
    const label = v === 'c' || v === 'o' ? 3 : t + 1;
    lines.push(
      `| ${names[v] ?? v} | ${label} | ${f(mean(evs.map((e) => e.goldReward ?? Number.NaN)))} | ${f(mean(evs.map((e) => e.winRate ?? Number.NaN)))} | ${f(mean(evs.map((e) => e.kl)))} | ${f(mean(evs.map((e) => e.meanLength)), 1)} | ${f(mean(evs.map((e) => e.grammaticalRate ?? Number.NaN)))} |`,
    );
  }
}
lines.push(
  '',
  'Per seed at the last iteration (gold / win rate / grammatical), and seconds per variant and seed:',
  '',
);
lines.push(
  `| variant | ${seeds.map((s) => `seed ${s}`).join(' | ')} |`,
  `| --- |${seeds.map(() => ' --- |').join('')}`,
);
for (const v of variants)
  lines.push(
    `| ${names[v] ?? v} | ${seeds
      .map((s) => {
        const r = rows.find((x) => x.seed === s && x.variant === v);
        const e = r?.result.iterations.at(-1)?.eval;
        return e
          ? `${f(e.goldReward ?? Number.NaN)} / ${f(e.winRate ?? Number.NaN)} / ${f(e.grammaticalRate ?? Number.NaN)} (${(r?.seconds ?? 0).toFixed(0)} s)`
          : '-';
      })
      .join(' | ')} |`,
  );

// The goals of the pipeline issue, at the last iteration, means over seeds.
const last = (v: string): EvalMetrics[] =>
  rows.filter((r) => r.variant === v).flatMap((r) => r.result.iterations.slice(-1).map((i) => i.eval));
const has = (v: string): boolean => last(v).length > 0;
const gold = (v: string): number => mean(last(v).map((e) => e.goldReward ?? Number.NaN));
const win = (v: string): number => mean(last(v).map((e) => e.winRate ?? Number.NaN));
const goals: Array<[string, string, boolean]> = [];
const sftGold = mean(initial.map((m) => m.goldReward ?? Number.NaN));
const sftWords = mean(initial.map((m) => m.meanLength));
if (has('b')) {
  const gram = mean(last('b').map((e) => e.grammaticalRate ?? Number.NaN));
  goals.push(['(b) gold >= 1.8', f(gold('b')), gold('b') >= 1.8]);
  goals.push(['(b) win rate vs SFT >= 0.82', f(win('b')), win('b') >= 0.82]);
  goals.push(['(b) >= 90% grammatical', `${(100 * gram).toFixed(0)}%`, gram >= 0.9]);
  if (has('c'))
    goals.push([
      '(b) beats (c) by >= 1.5 gold and >= 0.25 win rate',
      `+${f(gold('b') - gold('c'))} gold, +${f(win('b') - win('c'))} win`,
      gold('b') - gold('c') >= 1.5 && win('b') - win('c') >= 0.25,
    ]);
  if (has('o'))
    goals.push([
      '(b) beats (o) by >= 0.5 gold',
      `+${f(gold('b') - gold('o'))}`,
      gold('b') - gold('o') >= 0.5,
    ]);
  const perIteration = [0, 1, 2].map((t) => mean(evalsAt('b', t).map((e) => e.goldReward ?? Number.NaN)));
  const rising = [sftGold, ...perIteration].every((g, i, all) => i === 0 || g > (all[i - 1] as number));
  goals.push([
    'gold rises every iteration in (b)',
    `${f(sftGold)} (SFT), ${perIteration.map((g) => f(g)).join(', ')}`,
    rising,
  ]);
}
if (has('a')) {
  const words = mean(last('a').map((e) => e.meanLength));
  goals.push([
    '(a) ends at >= 2x SFT length with gold below SFT',
    `${f(words, 1)} vs ${f(sftWords, 1)} words; gold ${f(gold('a'))} vs ${f(sftGold)}`,
    words >= 2 * sftWords && gold('a') < sftGold,
  ]);
}
if (goals.length) {
  lines.push(
    '',
    `## Against the goals of the pipeline issue (iteration 3, means over ${seeds.length} seeds)`,
    '',
  );
  lines.push('| goal | measured | |', '| --- | --- | --- |');
  for (const [goal, measured, met] of goals)
    lines.push(`| ${goal} | ${measured} | ${met ? 'met' : 'missed'} |`);
  lines.push(
    `| RM held-out accuracy next to the Bayes rate | ${f(mean(setupRows.map((r) => r.rmAccuracy)), 3)} vs ${f(mean(setupRows.map((r) => r.bayesRate)), 3)} (prototype 0.83 vs 0.87) | reported |`,
  );
}
await mkdir(values.out as string, { recursive: true });
await writeFile(join(values.out as string, 'RESULTS.md'), `${lines.join('\n')}\n`);
await writeFile(
  join(values.out as string, 'results.json'),
  `${JSON.stringify(rows, (k, v) => (k === 'policies' ? undefined : v), 2)}\n`,
);
say(`wrote ${join(values.out as string, 'RESULTS.md')}`);
