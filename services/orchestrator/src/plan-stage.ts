/**
 * The plan: what every iteration works from (pi_0, the judge's model, the prompt datasets, lambda),
 * resolved by the stage table from the spec and setup's results and checked here before the first
 * evaluation runs: every model and dataset the run reads exists, and every prompt and offline pair parses.
 * Its plan record tells the controller what each RLHFIteration starts from.
 */
import { invalidArgument } from '@rlhf/platform';
import type { PlanInputs, PlanRecord, PlanResult } from '@rlhf/workflow';
import type { StageContext } from './stage-context.js';

export async function plan(ctx: StageContext, o: PlanInputs): Promise<PlanResult> {
  if (!o.policy)
    throw invalidArgument('spec.policy.model', 'is required unless spec.setup trains the policy');
  if (!o.prompts)
    throw invalidArgument('spec.prompts.dataset', 'is required unless spec.setup synthesizes prompts');
  if (o.policyFromSpec) await ctx.datasets.modelMustExist(o.policy, 'spec.policy.model');
  if (o.judgeModelFromSpec && o.judgeModel)
    await ctx.datasets.modelMustExist(o.judgeModel, 'spec.judge.model');
  await ctx.datasets.promptRows(o.prompts);
  if (o.evalPrompts) await ctx.datasets.promptRows(o.evalPrompts);
  if (o.offlinePairs) await ctx.datasets.labelledPairs(o.offlinePairs, 'spec.pairs.dataset');
  const record: PlanRecord = {
    policy: o.policy,
    prompts: o.prompts.uri,
    ...(o.evalPrompts ? { evalPrompts: o.evalPrompts.uri } : {}),
    ...(o.proxyModel ? { rewardModel: o.proxyModel } : {}),
    lengthPenalty: o.lengthPenalty,
  };
  await ctx.state.putPlan(record);
  return {
    ...record,
    ...(o.judgeModel ? { judgeModel: o.judgeModel } : {}),
    ...(o.task ? { task: o.task } : {}),
    ...(o.offlinePairs ? { offlinePairs: o.offlinePairs } : {}),
  };
}
