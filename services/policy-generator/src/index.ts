import type { ServiceModule } from '@rlhf/platform';

/**
 * Samples n completions per prompt from a policy model, batched with a KV cache.
 * Its gRPC methods and NATS worker arrive with the services issue; until then the process serves health and
 * reflection only, and reports no serving status for rlhf.v1.PolicyGeneratorService (a health check for it answers NOT_FOUND).
 */
export const policyGeneratorService: ServiceModule = {
  name: 'policy-generator',
  summary: 'Samples n completions per prompt from a policy model, batched with a KV cache.',
  grpcServiceName: 'rlhf.v1.PolicyGeneratorService',
  bindings: () => [],
};
