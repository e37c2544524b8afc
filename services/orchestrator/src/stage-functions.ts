/** The function of every stage of the table: what the orchestrator runs when a stage has no record. */
import type { StageIO } from '@rlhf/workflow';
import { evaluate, generate, judge, pair, train } from './iteration-stages.js';
import { plan } from './plan-stage.js';
import {
  dataStage,
  initStage,
  lengthFitStage,
  preferenceModelStage,
  rewardModelStage,
  sftStage,
} from './setup-stages.js';
import type { StageFns } from './table-driver.js';

export const stageFunctions: StageFns<StageIO> = {
  data: dataStage,
  init: initStage,
  sft: sftStage,
  'reward-model': rewardModelStage,
  'preference-model': preferenceModelStage,
  'length-fit': lengthFitStage,
  plan,
  baseline: evaluate,
  generate,
  judge,
  pair,
  train,
  evaluate,
};
