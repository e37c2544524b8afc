/**
 * gRPC handler wrappers: a request id and a child logger per call, Prometheus counters and latency
 * histograms, deadline and cancellation as an AbortSignal, and errors mapped to status codes (an RlhfError
 * keeps its code and field; anything else is INTERNAL and logged with its stack). A request whose string
 * fields were not valid UTF-8 on the wire (see utf8-fields.ts) is answered INVALID_ARGUMENT before the handler.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { asRlhfError, type Logger, RlhfError, toGrpcError } from '@rlhf/platform';
import { Counter, Histogram, type Registry } from 'prom-client';
import { checkRequestUtf8 } from './utf8-fields.js';

export interface CallContext {
  requestId: string;
  logger: Logger;
  /** Aborted when the client cancels or its deadline passes. */
  signal: AbortSignal;
}

/** A call's context, and `answered()` to say its handler is done (a cancel after that aborts nothing). */
interface OpenCall {
  ctx: CallContext;
  answered(): void;
}

interface GrpcMetrics {
  requests: Counter<'method' | 'code'>;
  latency: Histogram<'method'>;
}

const metricsByRegistry = new WeakMap<Registry, GrpcMetrics>();

function grpcMetrics(registry: Registry): GrpcMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      requests: new Counter({
        name: 'rlhf_grpc_requests_total',
        help: 'gRPC calls by method and status code',
        labelNames: ['method', 'code'],
        registers: [registry],
      }),
      latency: new Histogram({
        name: 'rlhf_grpc_request_seconds',
        help: 'gRPC call latency',
        labelNames: ['method'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

export interface HandlerDeps {
  logger: Logger;
  metrics: Registry;
}

function openCall(
  method: string,
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  deps: HandlerDeps,
): OpenCall {
  const given = call.metadata.get('x-request-id')[0];
  const requestId = typeof given === 'string' && given.length <= 128 ? given : randomUUID();
  const controller = new AbortController();
  // grpc-js also reports 'cancelled' when the stream closes after the answer went out: nothing to abort then.
  let done = false;
  call.on('cancelled', () => {
    if (!done) controller.abort(new RlhfError('CANCELLED', 'the client cancelled the call'));
  });
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(at)) {
    const left = at - Date.now();
    const timer = setTimeout(
      () => controller.abort(new RlhfError('DEADLINE_EXCEEDED', 'the deadline passed')),
      Math.max(0, left),
    );
    timer.unref();
    controller.signal.addEventListener('abort', () => clearTimeout(timer));
    call.on('finish', () => clearTimeout(timer));
  }
  return {
    ctx: { requestId, logger: deps.logger.child({ method, requestId }), signal: controller.signal },
    answered: () => {
      done = true;
    },
  };
}

function failure(method: string, ctx: CallContext, err: unknown): ReturnType<typeof toGrpcError> {
  const known = asRlhfError(err);
  if (known) ctx.logger.info({ code: known.code, field: known.field }, known.describe());
  else ctx.logger.error({ err }, `${method} failed`);
  return toGrpcError(err);
}

export function unary<Req, Res>(
  method: string,
  deps: HandlerDeps,
  fn: (req: Req, ctx: CallContext) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  const m = grpcMetrics(deps.metrics);
  return (call, callback) => {
    const stop = m.latency.startTimer({ method });
    const { ctx, answered } = openCall(method, call as grpc.ServerUnaryCall<unknown, unknown>, deps);
    Promise.resolve()
      .then(() => {
        checkRequestUtf8(call.request);
        return fn(call.request, ctx);
      })
      .finally(answered)
      .then(
        (res) => {
          stop();
          m.requests.inc({ method, code: 'OK' });
          callback(null, res);
        },
        (err: unknown) => {
          stop();
          const status = failure(method, ctx, err);
          m.requests.inc({ method, code: String(status.code) });
          callback(status as grpc.ServiceError);
        },
      );
  };
}

export function serverStream<Req, Res>(
  method: string,
  deps: HandlerDeps,
  fn: (req: Req, emit: (res: Res) => void, ctx: CallContext) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  const m = grpcMetrics(deps.metrics);
  return (call) => {
    const stop = m.latency.startTimer({ method });
    const { ctx, answered } = openCall(method, call as grpc.ServerWritableStream<unknown, unknown>, deps);
    Promise.resolve()
      .then(() => {
        checkRequestUtf8(call.request);
        return fn(call.request, (res) => call.write(res), ctx);
      })
      .finally(answered)
      .then(
        () => {
          stop();
          m.requests.inc({ method, code: 'OK' });
          call.end();
        },
        (err: unknown) => {
          stop();
          const status = failure(method, ctx, err);
          m.requests.inc({ method, code: String(status.code) });
          // grpc-js turns an 'error' event into the call's status; destroy() would end the stream without
          // sending one, leaving the client waiting.
          call.emit('error', Object.assign(new Error(status.details), status));
        },
      );
  };
}
