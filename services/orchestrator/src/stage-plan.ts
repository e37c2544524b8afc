/**
 * The run cut into cluster-sized units, shared by the controller (one Job per unit) and `rlhf stage` (the
 * process those Jobs run): `setup` (data, SFT, reward model, the length fit and pi_0's evaluation, all of
 * iteration 0), then generate, judge, pair, train and evaluate for each iteration. A unit is done exactly
 * when the KV record of its last stage exists. Plain data: no NATS, no models.
 */
import type { PlacementGroup, RlhfRunSpec } from '@rlhf/run-spec';
import type { StopPoint } from './run-context.js';

export const iterationStages = ['generate', 'judge', 'pair', 'train', 'evaluate'] as const;
export type IterationStage = (typeof iterationStages)[number];
export type UnitStage = 'setup' | IterationStage;

export interface StageUnit {
  iteration: number;
  stage: UnitStage;
  /** The stage record that marks the unit done. */
  until: StopPoint;
}

export function setupUnit(): StageUnit {
  return { iteration: 0, stage: 'setup', until: { iteration: 0, stage: 'evaluate' } };
}

export function iterationUnit(iteration: number, stage: IterationStage): StageUnit {
  return { iteration, stage, until: { iteration, stage } };
}

/** Every unit of the run, in order. */
export function stageUnits(spec: Pick<RlhfRunSpec, 'iterations'>): StageUnit[] {
  const units = [setupUnit()];
  for (let t = 1; t <= spec.iterations; t++) for (const s of iterationStages) units.push(iterationUnit(t, s));
  return units;
}

export function parseUnit(stage: string, iteration: number): StageUnit {
  if (stage === 'setup') {
    if (iteration !== 0) throw new Error('the setup unit is iteration 0');
    return setupUnit();
  }
  if (!(iterationStages as readonly string[]).includes(stage))
    throw new Error(`unknown stage "${stage}": one of setup, ${iterationStages.join(', ')}`);
  if (!Number.isInteger(iteration) || iteration < 1) throw new Error('iteration stages start at iteration 1');
  return iterationUnit(iteration, stage as IterationStage);
}

/** The services whose workers a unit needs (each started once per pod). */
export function unitServices(spec: RlhfRunSpec, stage: UnitStage): string[] {
  const judge =
    spec.judge.type === 'reward'
      ? ['reward-model']
      : spec.judge.type === 'preference'
        ? ['preference-model']
        : [];
  switch (stage) {
    case 'setup': {
      const all = ['policy-generator', 'dpo-trainer'];
      if (spec.setup || spec.judge.type === 'reward') all.push('reward-model');
      if (spec.judge.type === 'preference' || spec.setup?.preferenceModel) all.push('preference-model');
      return all;
    }
    // Offline pairs (spec.pairs.dataset) leave nothing to generate or judge.
    case 'generate':
      return spec.pairs.dataset ? [] : ['policy-generator'];
    case 'judge':
      return spec.pairs.dataset ? [] : judge;
    case 'pair':
      return [];
    case 'train':
      return ['dpo-trainer'];
    case 'evaluate':
      return spec.judge.type === 'reward' ? ['policy-generator', 'reward-model'] : ['policy-generator'];
  }
}

const noPlacement: PlacementGroup = { replicas: 1, gpus: 0 };

/** The placement group of a unit's pods: setup trains, so it goes where DPO training goes; pairing is CPU. */
export function unitPlacement(spec: RlhfRunSpec, stage: UnitStage): PlacementGroup {
  switch (stage) {
    case 'setup':
      return { ...spec.placement.train, replicas: 1 };
    case 'pair':
      return { ...noPlacement };
    case 'train':
      return { ...spec.placement.train, replicas: 1 };
    default:
      return spec.placement[stage];
  }
}
