import type { ServiceModule } from '@rlhf/platform';

/**
 * Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models.
 * Its gRPC methods and NATS worker arrive with the services issue; until then the process serves health and
 * reflection only, and reports no serving status for rlhf.v1.RewardModelService (a health check for it answers NOT_FOUND).
 */
export const rewardModelService: ServiceModule = {
  name: 'reward-model',
  summary:
    'Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models.',
  grpcServiceName: 'rlhf.v1.RewardModelService',
  bindings: () => [],
};
