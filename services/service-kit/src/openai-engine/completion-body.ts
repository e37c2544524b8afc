/**
 * One prompt's POST /v1/completions body, and the checks its answer must pass before a shard uses it.
 * The answer comes from another process over the network, so it is hostile: every choice must be there
 * exactly once, every token id inside the policy's vocabulary, every log-prob a finite number <= 0, no
 * completion longer than max_tokens. The token ids come from vLLM's `return_token_ids` (`token_ids`), or,
 * from a server without it, from `return_tokens_as_token_ids` (`token_id:<id>` in logprobs.tokens); when
 * both are given they must agree.
 */
import { RlhfError } from '@rlhf/platform';

/** What a sampling stage asks for one prompt (the built-in engine's settings, in the API's terms). */
export interface CompletionJob {
  model: string;
  /** The prompt as the policy reads it (BOS included): servers take token ids verbatim. */
  promptIds: readonly number[];
  n: number;
  /** The prompt's own seed (see servedSeed). */
  seed: number;
  greedy: boolean;
  temperature: number;
  topP: number;
  /** 0: every token. */
  topK: number;
  maxTokens: number;
  stop: readonly string[];
  stopTokenIds: readonly number[];
}

/** What the shard needs of the policy to read an answer. */
export interface PolicyVocab {
  /** Token ids the policy can emit are below this. */
  vocabSize: number;
  /** EOS and the model's other end tokens: a completion ending on one ended as EOS does. */
  endIds: ReadonlySet<number>;
}

/** A served completion in the built-in engine's terms (ml-engine Sample without its indices). */
export interface ServedCompletion {
  tokenIds: number[];
  logprobs: number[];
  finishReason: 'eos' | 'length' | 'stop';
}

/**
 * The seed that makes a one-prompt request draw the built-in engine's random streams. The built-in engine
 * keys sample j of the prompt with global index i by rowSeed(seed, i, j), which starts from seed ^ i; a
 * request holds one prompt at index 0, so seed ^ i as its seed gives the same streams. A server with
 * another sampler (vLLM) still answers a repeated request the same way, which is what retries need.
 */
export function servedSeed(seed: number, promptIndex: number): number {
  return (seed ^ promptIndex) >>> 0;
}

export function completionBody(job: CompletionJob): Record<string, unknown> {
  return {
    model: job.model,
    prompt: [...job.promptIds],
    n: job.n,
    max_tokens: job.maxTokens,
    // Greedy is temperature 0 on every OpenAI-compatible server.
    temperature: job.greedy ? 0 : job.temperature,
    top_p: job.greedy ? 1 : job.topP,
    // vLLM spells "every token" -1.
    top_k: job.greedy || job.topK === 0 ? -1 : job.topK,
    seed: job.seed,
    ...(job.stop.length ? { stop: [...job.stop] } : {}),
    ...(job.stopTokenIds.length ? { stop_token_ids: [...job.stopTokenIds] } : {}),
    // The sampled token's own log-prob (KL and the generation rows need it), tokens as ids.
    logprobs: 0,
    return_token_ids: true,
    return_tokens_as_token_ids: true,
  };
}

/** A fault of the server's answer: not retried (the same request gets the same answer). */
export function badAnswer(url: string, message: string): RlhfError {
  return new RlhfError('FAILED_PRECONDITION', `${url} answered a completion request wrongly: ${message}`, {
    field: 'spec.engines.generate.openai.url',
    fix: 'point it at an OpenAI-compatible server (vLLM, or rlhf serve policy-generator --openai-port) serving the policy',
  });
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function idsOf(v: unknown, where: string, url: string, vocab: number): number[] {
  if (!Array.isArray(v)) throw badAnswer(url, `${where} is not a list of token ids`);
  for (const id of v)
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab)
      throw badAnswer(
        url,
        `${where} holds ${JSON.stringify(id)}, not a token id of the policy (vocabulary ${vocab})`,
      );
  return v as number[];
}

/** `token_id:<id>` tokens (return_tokens_as_token_ids) as ids. */
function idsOfTokens(tokens: unknown, where: string, url: string, vocab: number): number[] {
  if (!Array.isArray(tokens)) throw badAnswer(url, `${where} is not a list`);
  return idsOf(
    tokens.map((t) => {
      const m = typeof t === 'string' ? /^token_id:(\d{1,10})$/.exec(t) : null;
      if (!m) throw badAnswer(url, `${where} holds ${JSON.stringify(t)}, not "token_id:<id>"`);
      return Number(m[1]);
    }),
    where,
    url,
    vocab,
  );
}

/** The n completions of one prompt's answer, by choice index. */
export function parseCompletionAnswer(
  body: unknown,
  job: CompletionJob,
  policy: PolicyVocab,
  url: string,
): ServedCompletion[] {
  if (!isObject(body) || !Array.isArray(body.choices)) throw badAnswer(url, 'no "choices" list');
  if (body.choices.length !== job.n) throw badAnswer(url, `${body.choices.length} choices for n = ${job.n}`);
  const out: Array<ServedCompletion | undefined> = new Array(job.n).fill(undefined);
  body.choices.forEach((c: unknown, k: number) => {
    const where = `choices[${k}]`;
    if (!isObject(c)) throw badAnswer(url, `${where} is not an object`);
    const index = c.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= job.n)
      throw badAnswer(url, `${where}.index is ${JSON.stringify(index)}, not in 0..${job.n - 1}`);
    if (out[index]) throw badAnswer(url, `choice index ${index} appears twice`);
    const lp = c.logprobs;
    if (!isObject(lp) || !Array.isArray(lp.token_logprobs))
      throw badAnswer(url, `${where}.logprobs.token_logprobs is missing (the server ignored logprobs: 0)`);
    const given =
      c.token_ids !== undefined && c.token_ids !== null
        ? idsOf(c.token_ids, `${where}.token_ids`, url, policy.vocabSize)
        : null;
    const fromTokens =
      lp.tokens === undefined
        ? null
        : idsOfTokens(lp.tokens, `${where}.logprobs.tokens`, url, policy.vocabSize);
    const ids = given ?? fromTokens;
    if (ids === null)
      throw badAnswer(url, `${where} has neither token_ids nor logprobs.tokens as "token_id:<id>"`);
    if (fromTokens && (fromTokens.length !== ids.length || fromTokens.some((id, t) => id !== ids[t])))
      throw badAnswer(url, `${where}.token_ids and logprobs.tokens name different tokens`);
    if (ids.length === 0 || ids.length > job.maxTokens)
      throw badAnswer(url, `${where} has ${ids.length} tokens; max_tokens was ${job.maxTokens}`);
    const logprobs = lp.token_logprobs as unknown[];
    if (logprobs.length !== ids.length)
      throw badAnswer(url, `${where} has ${ids.length} tokens but ${logprobs.length} log-probs`);
    for (const x of logprobs)
      if (typeof x !== 'number' || !Number.isFinite(x) || x > 1e-6)
        throw badAnswer(
          url,
          `${where}.logprobs.token_logprobs holds ${JSON.stringify(x)}, not a finite log-prob <= 0`,
        );
    const reason = c.finish_reason;
    if (reason !== 'stop' && reason !== 'length')
      throw badAnswer(url, `${where}.finish_reason is ${JSON.stringify(reason)}, not "stop" or "length"`);
    // OpenAI says "stop" for EOS and for stop sequences alike; the last token tells them apart.
    const last = ids[ids.length - 1] as number;
    const finishReason = reason === 'length' ? 'length' : policy.endIds.has(last) ? 'eos' : 'stop';
    out[index] = { tokenIds: [...ids], logprobs: logprobs as number[], finishReason };
  });
  return out as ServedCompletion[];
}
