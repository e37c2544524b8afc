/**
 * The policy a sampling unit samples from, as the stage table resolves it (services/workflow's
 * stage-table.ts): iteration t's generate samples pi_{t-1} (the RLHFIteration's spec.policy), its evaluate
 * samples pi_t (what iteration t's train recorded), and setup's baseline samples the spec's policy (setup
 * with spec.setup trains pi_0 in its own Job, so nothing can be served before it).
 */
import type { RlhfRunSpec } from '@rlhf/run-spec';
import type { StageUnit } from '@rlhf/workflow';
import type { IterationObject } from '../resources.js';
import type { RecordsView } from '../run-records.js';

/** The model URI, or undefined while the record or object that names it has not arrived. */
export function unitPolicy(
  spec: RlhfRunSpec,
  unit: StageUnit,
  records: RecordsView,
  iteration: IterationObject | undefined,
): string | undefined {
  if (unit.stage === 'setup') return spec.setup === undefined ? spec.policy?.model : undefined;
  if (unit.stage === 'generate') return iteration?.spec.policy;
  if (unit.stage === 'evaluate') {
    const model = records.stage(unit.iteration, 'train')?.result.model;
    return typeof model === 'string' ? model : undefined;
  }
  return undefined;
}
