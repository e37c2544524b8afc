/**
 * The reference task's variants (docs/ARCHITECTURE.md) over several seeds, in one process each seed, written
 * as a table like the paper's Tables 2 and 4 to docs/RESULTS.md (and the raw reports to docs/results.json):
 *   a  online, RM judge, no length penalty        b  online, RM judge, fitted length penalty
 *   c  offline DPO on annotator-labelled pairs    o  offline best-vs-worst of 8 SFT samples under the RM
 *   g  online, judged by the gold (an upper bound)
 *   p  online, judged by the pairwise preference model (knock-out tournament; no length penalty applies)
 * The goals of the pipeline issue (iteration 3, means over seeds) are checked and tabled from the same rows.
 *
 *   node --import tsx services/pipeline/scripts/paper-experiment.ts [--seeds 1,2,3] [--variants a,b,c,o,g] [--out docs]
 * The DPO flags change the recipe for every variant of the run (to try a setting on seeds other than the
 * reported ones); the table's header says which setting produced it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultLoopConfig,
  type LoopResult,
  prepareReferenceTask,
  referenceRecipe,
  renderResults,
  runLocalIterations,
  runOfflineDpo,
  type VariantResult,
} from '../src/index.js';

const usage = `Usage: node --import tsx services/pipeline/scripts/paper-experiment.ts [options]
  --seeds 1,2,3          seeds (data, models, sampling); one setup (SFT, RM, length fit) per seed
  --variants a,b,c,o,g   a: online RM no penalty, b: online RM + fitted penalty, c: offline annotator pairs,
                         o: offline best-vs-worst of SFT samples, g: online gold judge,
                         p: online preference-model tournament (trains a PM per seed)
  --out docs             where RESULTS.md and results.json go
  --sft-epochs N         override the recipe's SFT epochs (${referenceRecipe.sft.epochs})
  --dpo-lr X             override the DPO learning rate (${defaultLoopConfig.dpo.lr})
  --dpo-epochs N         override the DPO epochs per iteration (${defaultLoopConfig.dpo.epochs})
  --beta X               override DPO's beta (${defaultLoopConfig.dpo.dpo.beta})
  --nll-weight X         override the weight of the NLL term on chosen responses (${defaultLoopConfig.dpo.dpo.nllWeight})
  --help                 this text`;
const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    variants: { type: 'string', default: 'a,b,c,o,g' },
    out: { type: 'string', default: 'docs' },
    'sft-epochs': { type: 'string', default: String(referenceRecipe.sft.epochs) },
    'dpo-lr': { type: 'string', default: String(defaultLoopConfig.dpo.lr) },
    'dpo-epochs': { type: 'string', default: String(defaultLoopConfig.dpo.epochs) },
    beta: { type: 'string', default: String(defaultLoopConfig.dpo.dpo.beta) },
    'nll-weight': { type: 'string', default: String(defaultLoopConfig.dpo.dpo.nllWeight) },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
/** The value of a numeric flag, or exit with the flag's name and what it takes. */
function numberFlag(name: string, integer: boolean, min: number): number {
  const raw = values[name as keyof typeof values] as string;
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || x < min || (integer && !Number.isInteger(x))) {
    process.stderr.write(
      `--${name}: expected ${integer ? 'a whole number' : 'a number'} >= ${min}, got "${raw}"\n${usage}\n`,
    );
    process.exit(2);
  }
  return x;
}
const recipeDpo = defaultLoopConfig.dpo;
const dpo = {
  ...recipeDpo,
  lr: numberFlag('dpo-lr', false, 0),
  epochs: numberFlag('dpo-epochs', true, 1),
  dpo: {
    ...recipeDpo.dpo,
    beta: numberFlag('beta', false, 0),
    nllWeight: numberFlag('nll-weight', false, 0),
  },
};
const sftEpochs = numberFlag('sft-epochs', true, 1);
const seeds = (values.seeds as string).split(',').map(Number);
if (seeds.some((x) => !Number.isInteger(x) || x < 0)) {
  process.stderr.write(`--seeds: expected whole numbers >= 0 separated by commas, got "${values.seeds}"\n`);
  process.exit(2);
}
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
    sftEpochs,
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
      dpo,
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

const minutes = (Date.now() - started) / 60000;
const c = { ...defaultLoopConfig, dpo };
const m = referenceRecipe.model;
const results: VariantResult[] = rows.map((r) => ({
  seed: r.seed,
  variant: r.variant,
  rmAccuracy: r.rmAccuracy,
  pmAccuracy: r.pmAccuracy,
  bayesRate: r.bayesRate,
  lambda: r.lambda,
  lambdaFitOver: r.lambdaFitOver,
  seconds: r.seconds,
  initial: r.result.initial,
  iterations: r.result.iterations.map((i) => i.eval),
}));
/** The flags given that change the recipe, as they were typed (empty for the recipe itself). */
function overrides(): string {
  const recipe: Record<string, number> = {
    'sft-epochs': referenceRecipe.sft.epochs,
    'dpo-lr': recipeDpo.lr,
    'dpo-epochs': recipeDpo.epochs,
    beta: recipeDpo.dpo.beta,
    'nll-weight': recipeDpo.dpo.nllWeight,
  };
  return Object.entries(recipe)
    .filter(([name, x]) => Number(values[name as keyof typeof values]) !== x)
    .map(([name]) => ` --${name} ${values[name as keyof typeof values]}`)
    .join('');
}
const markdown = renderResults(results, {
  seeds,
  variants,
  header: [
    `Produced by \`node --import tsx services/pipeline/scripts/paper-experiment.ts --seeds ${seeds.join(',')} --variants ${variants.join(',')}${overrides()}\``,
    `in ${minutes.toFixed(1)} minutes on this machine (2 cores, shared). Every stage runs in one process (the in-process`,
    'pipeline of `services/pipeline`), with the recipe of `rlhf quickstart` and `examples/quickstart.yaml`: a',
    `${m.numHiddenLayers}-layer d=${m.hiddenSize} Llama with a ${m.vocabSize}-token BPE (every word of the grammar one token), SFT ${referenceRecipe.sft.epochs} epochs at lr ${referenceRecipe.sft.learningRate},`,
    `a Bradley-Terry RM ${referenceRecipe.rewardModel.epochs} epochs at lr ${referenceRecipe.rewardModel.learningRate} from the SFT backbone, ${c.promptsPerIteration} prompts x ${c.samplesPerPrompt} samples per iteration,`,
    `DPO beta ${c.dpo.dpo.beta}, lr ${c.dpo.lr}, ${c.dpo.epochs} epochs, batch ${c.dpo.batchSize}, NLL weight ${c.dpo.dpo.nllWeight}, reference pi_0. Means over seeds.`,
    'Offline variants train once on as many pairs as the online ones use in total; they are listed at iteration 3.',
  ],
});
await mkdir(values.out as string, { recursive: true });
await writeFile(join(values.out as string, 'RESULTS.md'), markdown);
await writeFile(
  join(values.out as string, 'results.json'),
  `${JSON.stringify(rows, (k, v) => (k === 'policies' ? undefined : v), 2)}\n`,
);
say(`wrote ${join(values.out as string, 'RESULTS.md')}`);
