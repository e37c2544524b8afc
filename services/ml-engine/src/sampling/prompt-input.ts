/**
 * One prompt as the sampler takes it: text to encode, or token ids already encoded. A type of its own so the
 * chat template can produce prompts without importing the sampler.
 */
export type PromptInput = { text: string } | { ids: number[] };
