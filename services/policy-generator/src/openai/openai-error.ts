/**
 * Errors of the OpenAI-compatible API in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
 * with the HTTP status OpenAI clients act on (the `openai` npm client maps 400, 401, 404, 413, 429 and 5xx to
 * its own error classes and retries 429 and 5xx). Checks shared with gRPC raise RlhfError naming proto
 * fields (`sampling.top_p`); `openAiErrorOf` maps them to the request parameter (`top_p`).
 */
import { RlhfError } from '@rlhf/platform';

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAiError';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A bad request parameter: 400, naming it. */
export function badParam(param: string, message: string): OpenAiError {
  return new OpenAiError(400, `${param}: ${message}`, param);
}

/** The request parameter a proto field path of the shared checks stands for. */
export function paramOfField(field: string | undefined): string | null {
  if (field === undefined) return null;
  const head = field.replace(/\[\d+\].*$/, '').replace(/\.(uri|digest)$/, '');
  const byField: Record<string, string> = {
    prompts: 'prompt',
    prompt_token_ids: 'prompt',
    conversations: 'messages',
    'conversations.messages': 'messages',
    n: 'n',
    model: 'model',
    'sampling.temperature': 'temperature',
    'sampling.top_p': 'top_p',
    'sampling.top_k': 'top_k',
    'sampling.max_new_tokens': 'max_tokens',
    'sampling.stop': 'stop',
    'sampling.stop_token_ids': 'stop_token_ids',
    'sampling.seed': 'seed',
  };
  return byField[head] ?? byField[field.replace(/\[\d+\]/g, '')] ?? head;
}

const statusOfCode: Partial<Record<RlhfError['code'], number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  // Over a server limit (prompts, n, tokens, characters): the request must change, as OpenAI's own
  // context-length errors say with 400.
  RESOURCE_EXHAUSTED: 400,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 499,
};

/**
 * The OpenAI-style error for anything a handler threw. An RlhfError keeps its message, field (as the
 * parameter) and fix; anything else is a bug or a fault of this server: 500 "internal error" without details
 * (they go to the log, see the server).
 */
export function openAiErrorOf(err: unknown): OpenAiError {
  if (err instanceof OpenAiError) return err;
  if (err instanceof RlhfError && err.code !== 'INTERNAL') {
    const status = statusOfCode[err.code] ?? 500;
    if (status >= 500 && status !== 503 && status !== 504)
      return new OpenAiError(500, 'internal error', null, 'server_error');
    const param = paramOfField(err.field);
    const text = err.fix ? `${err.message} (${err.fix})` : err.message;
    const code =
      err.code === 'RESOURCE_EXHAUSTED'
        ? 'limit_exceeded'
        : err.code === 'NOT_FOUND'
          ? 'model_not_found'
          : null;
    return new OpenAiError(status, param ? `${param}: ${text}` : text, param, undefined, code);
  }
  return new OpenAiError(500, 'internal error', null, 'server_error');
}
