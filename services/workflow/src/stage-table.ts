/**
 * THE stage table: every stage of an RLHFRun, in run order (Algorithm 2 of arXiv 2405.07863). Setup runs once
 * (iteration 0): synthetic data, a fresh model, SFT, the judge models, the length-penalty fit, the plan every
 * iteration works from, and pi_0's evaluation. Then each iteration t = 1..T runs generate -> judge -> pair
 * -> train -> evaluate. Each entry says which unit (cluster Job) it belongs to, which services execute
 * its shards, when it runs, what it reads and writes, and how its inputs follow from the spec and the
 * stages before it. The drivers, the controller's units and summary.json's stage list all come from here.
 */
import { type EngineType, groupEngine, type PlacementGroup, type RlhfRunSpec } from '@rlhf/run-spec';
import { modelUri, pairsUri } from './run-layout.js';
import { earlier, type ResultsView, type ServiceName, type StageTable } from './stage-def.js';
import type { PromptSource, StageIO } from './stage-results.js';

type View = ResultsView<StageIO>;

/** Setup trains on the built-in engine, so its pod goes where DPO training goes, without GPUs. */
const setupPlacement = (spec: RlhfRunSpec): PlacementGroup => ({
  ...spec.placement.train,
  replicas: 1,
  gpus: 0,
});
const builtin = (): EngineType => 'builtin';
/**
 * A stage pod's placement. A stage handed to a GPU engine (vLLM, a TrainJob) only drives it: the engine's
 * own workload takes the group's GPUs, the stage pod none. A built-in stage is never given GPUs (the run
 * spec refuses them), so stage pods ask for GPUs only if that rule is bypassed.
 */
const podPlacement =
  (group: 'generate' | 'judge' | 'train' | 'evaluate', replicas?: number) =>
  (spec: RlhfRunSpec): PlacementGroup => {
    const p = spec.placement[group];
    const gpus = groupEngine(spec, group) === 'builtin' ? p.gpus : 0;
    return { ...p, gpus, ...(replicas ? { replicas } : {}) };
  };
/** Sampling stages (pi_0's baseline, generate, evaluate) share one engine, so their figures compare. */
const generateEngine = (spec: RlhfRunSpec): EngineType => spec.engines.generate.type;
const noServices = (): readonly ServiceName[] => [];
const always = () => true;
const withSetup = (spec: RlhfRunSpec) => spec.setup !== undefined;
/** Offline DPO (spec.pairs.dataset): labelled pairs replace generating and judging. */
const online = (spec: RlhfRunSpec) => spec.pairs.dataset === undefined;
const offlineNote = (spec: RlhfRunSpec) => `offline pairs from ${spec.pairs.dataset}`;
const judgeServices = (spec: RlhfRunSpec): readonly ServiceName[] =>
  spec.judge.type === 'reward'
    ? ['reward-model']
    : spec.judge.type === 'preference'
      ? ['preference-model']
      : [];
const evaluateServices = (spec: RlhfRunSpec): readonly ServiceName[] =>
  spec.judge.type === 'reward' ? ['policy-generator', 'reward-model'] : ['policy-generator'];

/** The preference model's training settings when setup trains one (asked for, or the judge needs it). */
export function preferenceModelSettings(spec: RlhfRunSpec) {
  const s = spec.setup;
  if (!s) return null;
  return s.preferenceModel ?? (spec.judge.type === 'preference' && !spec.judge.model ? s.rewardModel : null);
}

/** spec.setup; only setup's stages read it, and they run only with it. */
const setupOf = (v: View) => earlier(v.spec.setup, 'spec.setup', 'a setup stage');
const setupData = (v: View) => earlier(v.at(0).data, 'data', 'setup').files;
const setupFile = (v: View, name: string) => earlier(setupData(v)[name], `data (${name})`, 'setup');

/** What the run works from before the plan pins it: given in the spec, or made by setup. */
function sources(v: View) {
  const { spec } = v;
  const setup = v.at(0);
  const policy = spec.setup ? earlier(setup.sft, 'sft', 'plan').model : spec.policy?.model;
  const judgeModel =
    spec.judge.model ??
    (spec.judge.type === 'reward'
      ? setup['reward-model']?.model
      : spec.judge.type === 'preference'
        ? setup['preference-model']?.model
        : undefined);
  const promptsUri = spec.prompts.dataset ?? (spec.setup ? setupFile(v, 'prompts.jsonl') : undefined);
  const evalUri = spec.prompts.eval ?? (spec.setup ? setupFile(v, 'eval.jsonl') : undefined);
  const prompts: PromptSource | undefined = promptsUri
    ? { uri: promptsUri, field: 'spec.prompts.dataset' }
    : undefined;
  return {
    policy,
    judgeModel,
    prompts,
    evalPrompts: evalUri ? { uri: evalUri, field: 'spec.prompts.eval' } : undefined,
    task: spec.judge.task ?? spec.setup?.task,
  };
}

const plan = (v: View) => earlier(v.at(0).plan, 'plan', 'an iteration stage');

/** The policy iteration t starts from: pi_0, or the policy iteration t - 1 trained. */
function policyBefore(v: View, t: number): string {
  return t === 1 ? plan(v).policy : earlier(v.at(t - 1).train, 'train', 'the next iteration').model;
}

/** The held-out prompts: spec.prompts.eval (or setup's), else the first 64 training prompts. */
function evalSource(v: View): PromptSource {
  const p = plan(v);
  return p.evalPrompts
    ? { uri: p.evalPrompts, field: 'spec.prompts.eval' }
    : { uri: p.prompts, field: 'spec.prompts.dataset', first: 64 };
}

const training = ['epochs', 'learningRate', 'batchSize'];

export const stageTable: StageTable<StageIO> = [
  {
    name: 'data',
    phase: 'setup',
    unit: 'setup',
    record: 'data',
    enabled: withSetup,
    services: noServices,
    engine: builtin,
    placement: setupPlacement,
    inputs: [],
    outputs: [
      { name: 'files', kind: 'dataset' },
      { name: 'labelBayesRate', kind: 'figures' },
    ],
    params: [
      'setup.seed',
      'setup.sftExamples',
      'setup.preferencePairs',
      'setup.prompts',
      'setup.evalPrompts',
    ],
    resolve: (v) => ({ setup: setupOf(v) }),
  },
  {
    name: 'init',
    phase: 'setup',
    unit: 'setup',
    record: 'init',
    enabled: withSetup,
    services: noServices,
    engine: builtin,
    placement: setupPlacement,
    inputs: [{ name: 'corpus', kind: 'dataset' }],
    outputs: [{ name: 'model', kind: 'model' }],
    params: ['setup.model', 'setup.seed'],
    resolve: (v) => {
      const s = setupOf(v);
      return {
        corpus: setupFile(v, 'corpus.txt'),
        model: s.model,
        seed: s.seed,
        output: modelUri(v.run, 0, 'init'),
      };
    },
  },
  {
    name: 'sft',
    phase: 'setup',
    unit: 'setup',
    record: 'sft',
    enabled: withSetup,
    services: () => ['dpo-trainer'],
    engine: builtin,
    placement: setupPlacement,
    inputs: [
      { name: 'base', kind: 'model' },
      { name: 'dataset', kind: 'dataset' },
    ],
    outputs: [
      { name: 'model', kind: 'model' },
      { name: 'loss', kind: 'figures' },
    ],
    params: [...training.map((k) => `setup.sft.${k}`), 'setup.seed'],
    resolve: (v) => {
      const s = setupOf(v);
      return {
        base: earlier(v.at(0).init, 'init', 'sft').model,
        dataset: setupFile(v, 'sft.jsonl'),
        output: modelUri(v.run, 0, 'sft'),
        settings: s.sft,
        seed: s.seed,
      };
    },
  },
  {
    name: 'reward-model',
    phase: 'setup',
    unit: 'setup',
    record: 'reward-model',
    enabled: withSetup,
    services: () => ['reward-model'],
    engine: builtin,
    placement: setupPlacement,
    inputs: [
      { name: 'base', kind: 'model' },
      { name: 'dataset', kind: 'dataset' },
      { name: 'evalDataset', kind: 'dataset' },
    ],
    outputs: [
      { name: 'model', kind: 'model' },
      { name: 'accuracy', kind: 'figures' },
    ],
    params: [...training.map((k) => `setup.rewardModel.${k}`), 'setup.seed'],
    resolve: (v) => {
      const s = setupOf(v);
      return {
        base: earlier(v.at(0).sft, 'sft', 'reward-model').model,
        dataset: setupFile(v, 'preferences.jsonl'),
        evalDataset: setupFile(v, 'preferences-eval.jsonl'),
        output: modelUri(v.run, 0, 'rm'),
        settings: s.rewardModel,
        seed: s.seed,
      };
    },
  },
  {
    name: 'preference-model',
    phase: 'setup',
    unit: 'setup',
    record: 'preference-model',
    enabled: (spec) => preferenceModelSettings(spec) !== null,
    services: () => ['preference-model'],
    engine: builtin,
    placement: setupPlacement,
    inputs: [
      { name: 'base', kind: 'model' },
      { name: 'dataset', kind: 'dataset' },
      { name: 'evalDataset', kind: 'dataset' },
    ],
    outputs: [
      { name: 'model', kind: 'model' },
      { name: 'accuracy', kind: 'figures' },
    ],
    params: [...training.map((k) => `setup.preferenceModel.${k}`), 'setup.seed', 'judge.type', 'judge.model'],
    resolve: (v) => {
      const s = setupOf(v);
      return {
        base: earlier(v.at(0).sft, 'sft', 'preference-model').model,
        dataset: setupFile(v, 'preferences.jsonl'),
        evalDataset: setupFile(v, 'preferences-eval.jsonl'),
        output: modelUri(v.run, 0, 'pm'),
        settings: preferenceModelSettings(v.spec) ?? s.rewardModel,
        seed: s.seed,
      };
    },
  },
  {
    name: 'length-fit',
    phase: 'setup',
    unit: 'setup',
    record: 'length-fit',
    enabled: (spec) => spec.judge.lengthPenalty === 'auto',
    services: () => ['policy-generator', 'reward-model'],
    engine: builtin,
    placement: setupPlacement,
    inputs: [
      { name: 'policy', kind: 'model' },
      { name: 'rewardModel', kind: 'model' },
      { name: 'prompts', kind: 'dataset' },
    ],
    outputs: [{ name: 'lambda', kind: 'figures' }],
    params: ['judge.lengthPenalty', 'judge.task', 'setup.lengthFitPrompts', 'generation.seed'],
    resolve: (v) => {
      const s = sources(v);
      const prompts = earlier(s.prompts, 'prompts', 'length-fit');
      return {
        policy: earlier(s.policy, 'spec.policy.model', 'length-fit'),
        policyFromSpec: !v.spec.setup,
        judgeType: v.spec.judge.type,
        ...(s.judgeModel ? { rewardModel: s.judgeModel } : {}),
        rewardModelFromSpec: v.spec.judge.model !== undefined,
        prompts: { ...prompts, first: v.spec.setup?.lengthFitPrompts ?? 512 },
        ...(s.task ? { task: s.task } : {}),
        seed: v.spec.generation.seed,
      };
    },
  },
  {
    name: 'plan',
    phase: 'setup',
    unit: 'setup',
    record: 'plan',
    enabled: always,
    services: noServices,
    engine: builtin,
    placement: setupPlacement,
    inputs: [
      { name: 'policy', kind: 'model' },
      { name: 'judgeModel', kind: 'model' },
      { name: 'prompts', kind: 'dataset' },
      { name: 'evalPrompts', kind: 'dataset' },
      { name: 'offlinePairs', kind: 'dataset' },
    ],
    outputs: [{ name: 'plan', kind: 'figures' }],
    params: ['policy.model', 'judge', 'prompts.dataset', 'prompts.eval', 'pairs.dataset'],
    resolve: (v) => {
      const s = sources(v);
      const { judge } = v.spec;
      const lengthPenalty =
        judge.type === 'gold'
          ? 0
          : judge.lengthPenalty === 'auto'
            ? earlier(v.at(0)['length-fit'], 'length-fit', 'plan').lambda
            : judge.lengthPenalty;
      return {
        ...(s.policy ? { policy: s.policy } : {}),
        policyFromSpec: !v.spec.setup,
        ...(s.judgeModel ? { judgeModel: s.judgeModel } : {}),
        judgeModelFromSpec: judge.model !== undefined,
        ...(s.prompts ? { prompts: s.prompts } : {}),
        ...(s.evalPrompts ? { evalPrompts: s.evalPrompts } : {}),
        ...(v.spec.pairs.dataset ? { offlinePairs: v.spec.pairs.dataset } : {}),
        ...(judge.type === 'reward' && s.judgeModel ? { proxyModel: s.judgeModel } : {}),
        lengthPenalty,
        ...(s.task ? { task: s.task } : {}),
      };
    },
  },
  {
    name: 'baseline',
    phase: 'setup',
    unit: 'setup',
    // pi_0's evaluation is iteration 0's evaluate: its record and metrics sit where iteration t's do.
    record: 'evaluate',
    enabled: always,
    services: evaluateServices,
    engine: generateEngine,
    placement: setupPlacement,
    inputs: [
      { name: 'policy', kind: 'model' },
      { name: 'prompts', kind: 'dataset' },
      { name: 'rewardModel', kind: 'model' },
    ],
    outputs: [
      { name: 'outputs', kind: 'shards' },
      { name: 'metrics', kind: 'figures' },
    ],
    params: ['generation', 'judge.task'],
    resolve: (v) => {
      const p = plan(v);
      return {
        policy: p.policy,
        baseline: p.policy,
        prompts: evalSource(v),
        ...(p.rewardModel ? { rewardModel: p.rewardModel } : {}),
        ...(p.task ? { task: p.task } : {}),
        lengthPenalty: p.lengthPenalty,
      };
    },
  },
  {
    name: 'generate',
    phase: 'iteration',
    unit: 'generate',
    record: 'generate',
    enabled: online,
    notNeeded: offlineNote,
    services: () => ['policy-generator'],
    engine: generateEngine,
    placement: podPlacement('generate'),
    inputs: [
      { name: 'policy', kind: 'model' },
      { name: 'prompts', kind: 'dataset' },
    ],
    outputs: [{ name: 'outputs', kind: 'shards' }],
    params: ['generation', 'prompts.perIteration'],
    resolve: (v) => {
      const g = v.spec.generation;
      return {
        policy: policyBefore(v, v.iteration),
        prompts: { uri: plan(v).prompts, field: 'spec.prompts.dataset' },
        perIteration: v.spec.prompts.perIteration,
        selectionSeed: g.seed,
        samplesPerPrompt: g.samplesPerPrompt,
        seed: g.seed + v.iteration,
      };
    },
  },
  {
    name: 'judge',
    phase: 'iteration',
    unit: 'judge',
    record: 'judge',
    enabled: online,
    notNeeded: offlineNote,
    services: judgeServices,
    engine: (spec) => spec.engines.judge.type,
    placement: podPlacement('judge'),
    inputs: [
      { name: 'shards', kind: 'shards' },
      { name: 'model', kind: 'model' },
    ],
    outputs: [{ name: 'outputs', kind: 'shards' }],
    params: ['judge.type', 'judge.model', 'judge.lengthPenalty', 'judge.task'],
    resolve: (v) => {
      const p = plan(v);
      return {
        shards: earlier(v.at(v.iteration).generate, 'generate', 'judge').outputs,
        type: v.spec.judge.type,
        ...(p.judgeModel ? { model: p.judgeModel } : {}),
        lengthPenalty: p.lengthPenalty,
        ...(p.task ? { task: p.task } : {}),
      };
    },
  },
  {
    name: 'pair',
    phase: 'iteration',
    unit: 'pair',
    record: 'pair',
    enabled: always,
    services: noServices,
    engine: builtin,
    placement: () => ({ replicas: 1, gpus: 0 }),
    inputs: [
      { name: 'judged', kind: 'shards' },
      { name: 'offlinePairs', kind: 'dataset' },
    ],
    outputs: [{ name: 'pairs', kind: 'dataset' }],
    params: ['pairs.strategy', 'pairs.dataset', 'prompts.perIteration', 'generation.seed'],
    resolve: (v) => {
      const p = plan(v);
      const judged = v.at(v.iteration).judge;
      return {
        ...(p.offlinePairs
          ? { offlinePairs: p.offlinePairs }
          : { judged: earlier(judged, 'judge', 'pair').outputs }),
        perIteration: v.spec.prompts.perIteration,
        strategy: v.spec.pairs.strategy,
        seed: v.spec.generation.seed * 31 + v.iteration,
        output: pairsUri(v.run, v.iteration),
      };
    },
  },
  {
    name: 'train',
    phase: 'iteration',
    unit: 'train',
    record: 'train',
    enabled: always,
    services: () => ['dpo-trainer'],
    engine: (spec) => spec.engines.train.type,
    placement: podPlacement('train', 1),
    inputs: [
      { name: 'base', kind: 'model' },
      { name: 'reference', kind: 'model' },
      { name: 'dataset', kind: 'dataset' },
    ],
    outputs: [
      { name: 'model', kind: 'model' },
      { name: 'loss', kind: 'figures' },
    ],
    params: ['dpo', 'reference', 'generation.seed'],
    resolve: (v) => {
      const t = v.iteration;
      const current = policyBefore(v, t);
      const d = v.spec.dpo;
      return {
        base: current,
        reference: v.spec.reference === 'initial' ? plan(v).policy : current,
        dataset: pairsUri(v.run, t),
        pairs: earlier(v.at(t).pair, 'pair', 'train').pairs,
        output: modelUri(v.run, t, 'policy'),
        epochs: d.epochs,
        learningRate: d.learningRate,
        batchSize: d.batchSize,
        seed: v.spec.generation.seed + t,
      };
    },
  },
  {
    name: 'evaluate',
    phase: 'iteration',
    unit: 'evaluate',
    record: 'evaluate',
    enabled: always,
    services: evaluateServices,
    engine: generateEngine,
    placement: podPlacement('evaluate'),
    inputs: [
      { name: 'policy', kind: 'model' },
      { name: 'prompts', kind: 'dataset' },
      { name: 'rewardModel', kind: 'model' },
    ],
    outputs: [
      { name: 'outputs', kind: 'shards' },
      { name: 'metrics', kind: 'figures' },
    ],
    params: ['generation', 'judge.task'],
    resolve: (v) => {
      const t = v.iteration;
      const p = plan(v);
      const trained = earlier(v.at(t).train, 'train', 'evaluate');
      return {
        policy: trained.model,
        baseline: p.policy,
        prompts: evalSource(v),
        ...(p.rewardModel ? { rewardModel: p.rewardModel } : {}),
        ...(p.task ? { task: p.task } : {}),
        lengthPenalty: p.lengthPenalty,
        baselineOutputs: earlier(v.at(0).baseline, 'baseline', 'evaluate').outputs,
        trained: {
          pairs: earlier(v.at(t).pair, 'pair', 'evaluate').pairs,
          dpoLoss: finiteOrNull(trained.loss),
          dpoAccuracy: finiteOrNull(trained.accuracy),
        },
      };
    },
  },
];

const finiteOrNull = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

/** The record names of one iteration's stages, in order (summary.json's `durations` keys). */
export function iterationRecordNames<IO>(table: StageTable<IO>): string[] {
  return table.filter((d) => d.phase === 'iteration').map((d) => d.record);
}
