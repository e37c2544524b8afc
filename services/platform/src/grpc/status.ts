/**
 * The edge between our error values and gRPC: an RlhfError becomes a status with the same code and a
 * message that names the field; anything else is INTERNAL, with the detail kept in the server's log.
 */
import { Metadata, type ServerErrorResponse, status } from '@grpc/grpc-js';
import { asRlhfError, grpcStatusOf } from '../errors.js';

export function toGrpcError(err: unknown): Partial<ServerErrorResponse> & { code: number; details: string } {
  const known = asRlhfError(err);
  if (known) {
    const metadata = new Metadata();
    if (known.field) metadata.set('rlhf-field', known.field);
    return { code: grpcStatusOf[known.code], details: known.describe(), metadata };
  }
  return { code: status.INTERNAL, details: 'internal error; see the server log' };
}

/** Milliseconds left before the caller's deadline, or Infinity when it set none. */
export function deadlineRemainingMs(deadline: Date | number | undefined): number {
  if (deadline === undefined) return Number.POSITIVE_INFINITY;
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return Number.POSITIVE_INFINITY;
  return at - Date.now();
}
