/**
 * SamplingParams (common.proto) checked and resolved to the engine's settings, with the proto's defaults
 * for unset fields: temperature 1, top_p 1, top_k 0 (all), max_new_tokens 48, seed 42. Shared by the gRPC
 * calls and the stage workers, which name the fields by their path in their own message
 * (`sampling.top_p`, `generate.sampling.top_p`).
 */
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { SamplingParams } from '@rlhf/proto';

export interface GenerateLimits {
  /** Prompts per request. */
  maxPrompts: number;
  /** Samples per prompt (the proto allows 1..1024). */
  maxN: number;
  /** Completions per request: prompts x n. */
  maxCompletions: number;
  /** max_new_tokens. */
  maxNewTokens: number;
  /** Characters per prompt or stop string. */
  maxChars: number;
  /** Stop strings plus stop token ids. */
  maxStops: number;
}

export const defaultGenerateLimits: GenerateLimits = {
  maxPrompts: 1024,
  maxN: 1024,
  maxCompletions: 4096,
  maxNewTokens: 1024,
  maxChars: 32_768,
  maxStops: 32,
};

/** The proto's own bound on n (`1..1024`); above it the request is malformed, not merely too big. */
export const MAX_N = 1024;

export const samplingDefaults = { temperature: 1, topP: 1, topK: 0, maxNewTokens: 48, seed: 42 } as const;

/** Resolved sampling settings of one request. */
export interface SamplingSettings {
  temperature: number;
  topP: number;
  topK: number;
  greedy: boolean;
  maxNewTokens: number;
  seed: number;
  /** Non-empty stop strings. */
  stop: string[];
  stopIds: number[];
}

/**
 * Checks `p` (the message at `field`) against the contract and the limits. Model-dependent checks (stop
 * token ids inside the vocabulary, max_new_tokens within the model's positions) come once the model is
 * loaded (see prepareGeneration).
 */
export function checkSamplingParams(
  p: SamplingParams | undefined,
  limits: GenerateLimits,
  field = 'sampling',
): SamplingSettings {
  const temperature = p?.temperature ?? samplingDefaults.temperature;
  if (!(Number.isFinite(temperature) && temperature >= 0 && temperature <= 100)) {
    throw invalidArgument(
      `${field}.temperature`,
      `must be a number in 0..100, got ${temperature}`,
      'use 1 for the model distribution, 0 (or greedy) for the likeliest token',
    );
  }
  const topP = p?.topP ?? samplingDefaults.topP;
  if (!(Number.isFinite(topP) && topP > 0 && topP <= 1)) {
    throw invalidArgument(
      `${field}.top_p`,
      `must be in (0, 1], got ${topP}`,
      'use 1 (or leave it unset) to keep every token',
    );
  }
  const topK = p?.topK ?? samplingDefaults.topK;
  const maxNewTokens = p?.maxNewTokens ?? samplingDefaults.maxNewTokens;
  if (maxNewTokens < 1)
    throw invalidArgument(`${field}.max_new_tokens`, 'must be >= 1', 'leave it unset for 48');
  if (maxNewTokens > limits.maxNewTokens) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `${maxNewTokens} is above the server's limit of ${limits.maxNewTokens} new tokens`,
      { field: `${field}.max_new_tokens`, fix: `ask for at most ${limits.maxNewTokens}` },
    );
  }
  const stop = (p?.stop ?? []).filter((s) => s !== '');
  const stopIds = p?.stopTokenIds ?? [];
  if (stop.length + stopIds.length > limits.maxStops) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `${stop.length + stopIds.length} stop strings and ids, more than the server's limit of ${limits.maxStops}`,
      { field: `${field}.stop`, fix: 'give fewer stops' },
    );
  }
  (p?.stop ?? []).forEach((s, i) => {
    if (s.length > limits.maxChars) {
      throw new RlhfError(
        'RESOURCE_EXHAUSTED',
        `has ${s.length} characters, more than the limit ${limits.maxChars}`,
        { field: `${field}.stop[${i}]` },
      );
    }
  });
  return {
    temperature,
    topP,
    topK,
    greedy: p?.greedy === true || temperature === 0,
    maxNewTokens,
    seed: p?.seed ?? samplingDefaults.seed,
    stop,
    stopIds: [...stopIds],
  };
}

/** n as the proto defines it: unset means 1; else 1..1024 (0 is refused), and at most the server's limit. */
export function checkN(n: number | undefined, limits: GenerateLimits, field = 'n'): number {
  const value = n ?? 1;
  if (!(Number.isInteger(value) && value >= 1 && value <= MAX_N))
    throw invalidArgument(
      field,
      `must be in 1..${MAX_N}, got ${n}`,
      'ask for at least one sample, or leave it unset for 1',
    );
  if (value > limits.maxN) {
    throw new RlhfError('RESOURCE_EXHAUSTED', `${value} is above the server's limit of ${limits.maxN}`, {
      field,
      fix: `ask for at most ${limits.maxN} samples per prompt`,
    });
  }
  return value;
}
