import type { ServiceModule } from '@rlhf/platform';

/**
 * Runs DPO and SFT training jobs with progress, writing new policy checkpoints.
 * Its gRPC methods and NATS worker arrive with the services issue; until then the process serves health and
 * reflection only, and reports no serving status for rlhf.v1.DpoTrainerService (a health check for it answers NOT_FOUND).
 */
export const dpoTrainerService: ServiceModule = {
  name: 'dpo-trainer',
  summary: 'Runs DPO and SFT training jobs with progress, writing new policy checkpoints.',
  grpcServiceName: 'rlhf.v1.DpoTrainerService',
  bindings: () => [],
};
