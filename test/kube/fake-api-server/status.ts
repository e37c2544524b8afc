/** Kubernetes `Status` objects and the error type every handler throws to answer one. */
import type { ResourceType } from './resources.js';

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[] };
  code: number;
}

/** An API error carrying the Status the real apiserver would answer with. */
export class ApiError extends Error {
  constructor(readonly status: StatusObject) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
  }
  get code(): number {
    return this.status.code;
  }
}

function failure(code: number, reason: string, message: string, details?: StatusObject['details']): ApiError {
  const status: StatusObject = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) status.details = details;
  return new ApiError(status);
}

/** `jobs.batch`, `pods`, `rlhfruns.rlhf.dev`: how the apiserver names a resource in messages. */
export function qualifiedResource(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

function details(type: ResourceType, name: string): NonNullable<StatusObject['details']> {
  return type.group ? { name, group: type.group, kind: type.plural } : { name, kind: type.plural };
}

export const errors = {
  notFound: (type: ResourceType, name: string) =>
    failure(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, details(type, name)),
  noRoute: () => failure(404, 'NotFound', 'the server could not find the requested resource', {}),
  alreadyExists: (type: ResourceType, name: string) =>
    failure(409, 'AlreadyExists', `${qualifiedResource(type)} "${name}" already exists`, details(type, name)),
  conflict: (
    type: ResourceType,
    name: string,
    why = 'the object has been modified; please apply your changes to the latest version and try again',
  ) =>
    failure(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": ${why}`,
      details(type, name),
    ),
  applyConflict: (type: ResourceType, name: string, causes: StatusCause[]) =>
    failure(
      409,
      'Conflict',
      `Apply failed with ${causes.length} conflict${causes.length === 1 ? '' : 's'}: ${causes.map((c) => `${c.message}: ${c.field}`).join(', ')}`,
      { ...details(type, name), causes },
    ),
  invalid: (type: ResourceType, name: string, causes: StatusCause[]) =>
    failure(
      422,
      'Invalid',
      `${type.kind}${type.group ? `.${type.group}` : ''} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
      { name, ...(type.group ? { group: type.group } : {}), kind: type.kind, causes },
    ),
  badRequest: (message: string) => failure(400, 'BadRequest', message),
  methodNotAllowed: (message = 'the server does not allow this method on the requested resource') =>
    failure(405, 'MethodNotAllowed', message),
  unsupportedMediaType: (contentType: string, accepted: string[]) =>
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
      { causes: [{ reason: 'UnexpectedServerResponse', message: contentType }] },
    ),
  /** What a list or watch from a compacted resourceVersion answers (`Expired`, 410). */
  expired: (message: string) => failure(410, 'Expired', message),
};

export function success(type: ResourceType, name: string, uid: string): StatusObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...details(type, name), uid },
    code: 200,
  };
}
