/** The name `rlhf serve` takes and its one-line summary, in a module that loads nothing (`@rlhf/policy-generator/info`). */
export const serviceInfo = {
  name: 'policy-generator',
  summary: 'Samples n completions per prompt from a policy model, batched with a KV cache.',
} as const;
