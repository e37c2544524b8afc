/**
 * Errors the engine raises on bad input. The codes are the same strings as the platform's `ErrorCode`, so
 * a service can map an engine error to a gRPC status without the engine importing any transport code.
 */
export type EngineErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'INTERNAL';

export interface EngineErrorOptions {
  /** The field, option or file at fault, e.g. `vocabSize` or `data/pairs.jsonl:12`. */
  field?: string;
  /** What the caller should do instead. */
  fix?: string;
  cause?: unknown;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly field: string | undefined;
  readonly fix: string | undefined;

  constructor(code: EngineErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineError';
    this.code = code;
    this.field = options.field;
    this.fix = options.fix;
  }
}

export function invalidInput(message: string, field?: string, fix?: string): EngineError {
  const options: EngineErrorOptions = {};
  if (field !== undefined) options.field = field;
  if (fix !== undefined) options.fix = fix;
  return new EngineError('INVALID_ARGUMENT', message, options);
}
