/**
 * Errors as values with a code, the field at fault and the fix. One code maps to one gRPC status and one
 * Kubernetes condition reason, so a bad request reads the same wherever it surfaces.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'ALREADY_EXISTS'
  | 'INTERNAL'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED';

/** gRPC status numbers (grpc/status.proto), kept here so this module needs no gRPC import. */
export const grpcStatusOf: Record<ErrorCode, number> = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

/** Kubernetes condition reasons (CamelCase, as the API conventions ask). */
export const conditionReasonOf: Record<ErrorCode, string> = {
  CANCELLED: 'Cancelled',
  INVALID_ARGUMENT: 'InvalidSpec',
  DEADLINE_EXCEEDED: 'DeadlineExceeded',
  NOT_FOUND: 'NotFound',
  ALREADY_EXISTS: 'AlreadyExists',
  PERMISSION_DENIED: 'PermissionDenied',
  RESOURCE_EXHAUSTED: 'ResourceExhausted',
  FAILED_PRECONDITION: 'FailedPrecondition',
  INTERNAL: 'InternalError',
  UNAVAILABLE: 'Unavailable',
  UNAUTHENTICATED: 'Unauthenticated',
};

export interface RlhfErrorOptions {
  /** The field, flag or path at fault, e.g. `--port` or `spec.dpo.beta`. */
  field?: string;
  /** What the user should do instead, e.g. `pass an integer between 0 and 65535`. */
  fix?: string;
  cause?: unknown;
}

export class RlhfError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly fix: string | undefined;

  constructor(code: ErrorCode, message: string, options: RlhfErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RlhfError';
    this.code = code;
    this.field = options.field;
    this.fix = options.fix;
  }

  /** One line for a terminal or a status message: `<field>: <message> (<fix>)`. */
  describe(): string {
    const head = this.field ? `${this.field}: ${this.message}` : this.message;
    return this.fix ? `${head} (${this.fix})` : head;
  }
}

export function invalidArgument(field: string, message: string, fix?: string): RlhfError {
  return new RlhfError('INVALID_ARGUMENT', message, fix === undefined ? { field } : { field, fix });
}

export function isRlhfError(e: unknown): e is RlhfError {
  return e instanceof RlhfError;
}

/**
 * Libraries that must not import the platform (the ML engine) raise their own error class with the same
 * shape: a `code` from ErrorCode plus `field` and `fix`. This converts any such error to an RlhfError, and
 * returns null for everything else (a bug, reported as INTERNAL).
 */
export function asRlhfError(e: unknown): RlhfError | null {
  if (e instanceof RlhfError) return e;
  if (!(e instanceof Error)) return null;
  const { code, field, fix } = e as Error & { code?: unknown; field?: unknown; fix?: unknown };
  if (typeof code !== 'string' || !(code in grpcStatusOf)) return null;
  const options: RlhfErrorOptions = { cause: e };
  if (typeof field === 'string') options.field = field;
  if (typeof fix === 'string') options.fix = fix;
  return new RlhfError(code as ErrorCode, e.message, options);
}
