/** Promise wrappers over generated grpc-js client methods, and a status assertion for bad-input tests. */
import assert from 'node:assert/strict';
import { type CallOptions, Metadata, type ServiceError, status } from '@grpc/grpc-js';

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a unary method (bind it to its client first) with an optional deadline in ms. */
export function unaryCall<Req, Res>(
  method: UnaryMethod<Req, Res>,
  req: Req,
  deadlineMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Asserts the call fails with `code` and a message naming `field` (the text before the colon). */
export async function assertStatus(
  call: Promise<unknown>,
  code: status,
  field: string | null,
  label = '',
): Promise<void> {
  await assert.rejects(call, (err: ServiceError) => {
    assert.equal(
      err.code,
      code,
      `${label}: status ${status[err.code]} (${err.details}), want ${status[code]}`,
    );
    if (field !== null)
      assert.ok(err.details.startsWith(`${field}:`), `${label}: "${err.details}" should name ${field}`);
    return true;
  });
}
