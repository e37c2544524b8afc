/**
 * Sampling on an OpenAI-compatible server (spec.engines.generate.type openai): each prompt of a shard is
 * one POST {url}/completions with its own seed (completion-body.ts), several in flight at once so the
 * server batches them (vLLM's continuous batching, the policy generator's micro-batcher). One prompt per
 * request because such servers apply a request's seed to every prompt of a list: per-prompt seeds are what
 * make the samples independent of the sharding and equal to the built-in engine's.
 *
 * A request is idempotent (same body, same seed, same answer), so 429, 5xx, timeouts and connection
 * errors are retried with exponential backoff; any other status fails the shard with the server's own
 * error message and the URL.
 */
import { RlhfError } from '@rlhf/platform';
import {
  type CompletionJob,
  completionBody,
  type PolicyVocab,
  parseCompletionAnswer,
  type ServedCompletion,
} from './completion-body.js';

export interface OpenAiEndpointConfig {
  /** Base URL up to and including /v1. */
  url: string;
  /** Bearer token; undefined sends none. */
  apiKey?: string;
}

export interface CompletionsClientOptions {
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** Attempts per request (first included). Default 6. */
  attempts?: number;
  /** First backoff, doubled per retry (capped at 30 s). Default 500 ms. */
  backoffMs?: number;
  /** Per attempt. Default 10 minutes (a long completion on a busy server). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The HTTP client (tests pass a faulty one). Default global fetch. */
  fetch?: typeof fetch;
}

/** The API key a worker sends: OPENAI_API_KEY (on a cluster, the Secret spec.engines.*.openai.apiKeySecret names). */
export function apiKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const key = env.OPENAI_API_KEY?.trim();
  return key ? key : undefined;
}

/** The server's own error message from an error body (OpenAI's `{"error": {"message"}}`, or the text). */
function serverMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m =
      typeof body.error === 'string'
        ? body.error
        : typeof body.error?.message === 'string'
          ? body.error.message
          : typeof body.message === 'string'
            ? body.message
            : text;
    return m.slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}

const retryable = (status: number): boolean => status === 429 || status === 408 || status >= 500;

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** One prompt's completions, retried while the failure is the server's or the network's. */
export async function requestCompletions(
  endpoint: OpenAiEndpointConfig,
  job: CompletionJob,
  policy: PolicyVocab,
  o: CompletionsClientOptions = {},
): Promise<ServedCompletion[]> {
  const url = `${endpoint.url.replace(/\/+$/, '')}/completions`;
  const attempts = o.attempts ?? 6;
  const doFetch = o.fetch ?? fetch;
  const body = JSON.stringify(completionBody(job));
  let lastError = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const wait = Math.min(30_000, (o.backoffMs ?? 500) * 2 ** (attempt - 2));
      await sleep(wait, o.signal);
    }
    o.signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(o.timeoutMs ?? 600_000);
    let res: Response;
    let text: string;
    try {
      res = await doFetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}),
        },
        body,
        signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
      });
      text = await res.text();
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      // Refused, reset, DNS, timed out: the server may be starting or restarting.
      lastError = (err as Error).message;
      continue;
    }
    if (res.ok) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new RlhfError('FAILED_PRECONDITION', `${url} answered 200 with a body that is not JSON`, {
          field: 'spec.engines.generate.openai.url',
          fix: 'point it at an OpenAI-compatible server',
        });
      }
      return parseCompletionAnswer(parsed, job, policy, url);
    }
    lastError = `HTTP ${res.status}: ${serverMessage(text)}`;
    if (!retryable(res.status))
      throw new RlhfError(
        res.status === 401 || res.status === 403 ? 'PERMISSION_DENIED' : 'FAILED_PRECONDITION',
        `${url} refused a completion request for model ${JSON.stringify(job.model)}: ${lastError}`,
        {
          field: res.status === 401 || res.status === 403 ? 'OPENAI_API_KEY' : 'spec.engines.generate.openai',
          fix:
            res.status === 401 || res.status === 403
              ? "give the worker the server's key (OPENAI_API_KEY locally, spec.engines.generate.openai.apiKeySecret on a cluster)"
              : res.status === 404
                ? 'check the url (up to /v1) and that the server serves the model (GET /v1/models)'
                : 'check that the server supports /v1/completions with token-id prompts, seed, logprobs and return_token_ids',
        },
      );
  }
  throw new RlhfError('UNAVAILABLE', `${url} did not answer after ${attempts} attempts: ${lastError}`, {
    field: 'spec.engines.generate.openai.url',
    fix: 'check that the server is up and reachable from the worker',
  });
}

/** Every job's completions, in job order, at most `concurrency` requests in flight. */
export async function requestAllCompletions(
  endpoint: OpenAiEndpointConfig,
  jobs: readonly CompletionJob[],
  policy: PolicyVocab,
  o: CompletionsClientOptions = {},
): Promise<ServedCompletion[][]> {
  const out: ServedCompletion[][] = new Array(jobs.length);
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (next < jobs.length && !failed) {
      const i = next++;
      try {
        out[i] = await requestCompletions(endpoint, jobs[i] as CompletionJob, policy, o);
      } catch (err) {
        // The shard fails as a whole: the other lanes take no new prompts.
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, jobs.length) }, lane));
  return out;
}
