import type { ServiceModule } from '@rlhf/platform';

/**
 * Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains preference models.
 * Its gRPC methods and NATS worker arrive with the services issue; until then the process serves health and
 * reflection only, and reports no serving status for rlhf.v1.PreferenceModelService (a health check for it answers NOT_FOUND).
 */
export const preferenceModelService: ServiceModule = {
  name: 'preference-model',
  summary:
    'Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains preference models.',
  grpcServiceName: 'rlhf.v1.PreferenceModelService',
  bindings: () => [],
};
