/**
 * What the dpo-trainer trains: DPO on TRAIN shards and SFT on SFT shards (NATS), the same two objectives
 * its TrainingJobsService runs (gRPC). A shard's fields are checked by service-kit, shared with the reward
 * and preference trainers; every field error is INVALID_ARGUMENT naming it (`train.dpo.beta`).
 */
import { Stage, type StageWork } from '@rlhf/proto';
import { planTrainShard, type TrainingPlan, type TrainLimits } from '@rlhf/service-kit';

export type { TrainingPlan } from '@rlhf/service-kit';

/** The stages the dpo-trainer's workers train, and their objectives. */
export const trainerStages = { [Stage.STAGE_TRAIN]: 'dpo', [Stage.STAGE_SFT]: 'sft' } as const;

export function planFromShard(work: StageWork, limits?: TrainLimits): TrainingPlan {
  return planTrainShard(work, trainerStages, limits);
}
