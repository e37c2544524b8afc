/**
 * The sampling of a GENERATE or EVALUATE shard when the run hands it to an OpenAI-compatible server
 * (StageWork's `openai`): the same prompts, settings and random streams as the built-in engine, answered by
 * the server, as the engine's Samples, so the shard writes the very rows the built-in path writes.
 *
 * Which model the request names: `openai.model` when the run fixes one; otherwise the URI of the policy
 * being sampled, so a server that loads artifacts by URI (`rlhf serve policy-generator --openai-port`,
 * confined to its --artifact-root directories and its own object store) samples each iteration's policy.
 */
import type { LoadedModelDir, Sample } from '@rlhf/ml-engine';
import { invalidArgument } from '@rlhf/platform';
import type { OpenAiEngine } from '@rlhf/proto';
import { apiKeyFromEnv, type CompletionJob, requestAllCompletions, servedSeed } from '@rlhf/service-kit';
import type { SamplingSettings } from './sampling-settings.js';

/** The engine a shard names, checked: work from the queue is not trusted. */
export function checkOpenAiEngine(e: OpenAiEngine | undefined, field: string): OpenAiEngine | null {
  if (!e) return null;
  let url: URL;
  try {
    url = new URL(e.url);
  } catch {
    throw invalidArgument(
      `${field}.url`,
      `${JSON.stringify(e.url)} is not a URL`,
      'give http(s)://host[:port]/v1',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalidArgument(
      `${field}.url`,
      `must be http or https, got ${url.protocol}`,
      'give http(s)://host[:port]/v1',
    );
  if (url.username || url.password)
    throw invalidArgument(`${field}.url`, 'must not carry credentials', 'give the key in OPENAI_API_KEY');
  if (e.model.length > 4096) throw invalidArgument(`${field}.model`, 'is longer than 4096 characters');
  return e;
}

/**
 * n samples of each prompt from the server, in prompt order. Prompt k is the shard's prompt with global
 * index `firstIndex + k` for its random streams, as in the built-in engine.
 */
export async function sampleOnServer(o: {
  engine: OpenAiEngine;
  policyUri: string;
  model: LoadedModelDir;
  promptIds: readonly (readonly number[])[];
  firstIndex: number;
  n: number;
  sampling: SamplingSettings;
  signal?: AbortSignal;
}): Promise<Sample[][]> {
  const tok = o.model.tokenizer;
  const endIds = new Set<number>([...(o.model.endTokenIds ?? []), tok.eosId]);
  const s = o.sampling;
  const jobs: CompletionJob[] = o.promptIds.map((ids, k) => ({
    model: o.engine.model || o.policyUri,
    promptIds: ids,
    n: o.n,
    seed: servedSeed(s.seed, o.firstIndex + k),
    greedy: s.greedy,
    temperature: s.temperature,
    topP: s.topP,
    topK: s.topK,
    maxTokens: s.maxNewTokens,
    stop: s.stop,
    stopTokenIds: s.stopIds,
  }));
  const apiKey = apiKeyFromEnv();
  const answers = await requestAllCompletions(
    { url: o.engine.url, ...(apiKey ? { apiKey } : {}) },
    jobs,
    { vocabSize: o.model.config.vocab_size, endIds },
    o.signal ? { signal: o.signal } : {},
  );
  return answers.map((cs, k) =>
    cs.map((c, j) => ({
      promptIndex: o.firstIndex + k,
      sampleIndex: j,
      tokenIds: c.tokenIds,
      logprobs: c.logprobs,
      finishReason: c.finishReason,
    })),
  );
}
