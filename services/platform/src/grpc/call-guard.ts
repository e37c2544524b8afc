/**
 * What every call meets before a handler runs, for every service of a server (one grpc-js server
 * interceptor, so streaming rpcs are covered like unary ones):
 *
 * - who: with a token, the call must carry `authorization: Bearer <token>` (UNAUTHENTICATED otherwise);
 *   with an allow-list, the mutual-TLS client certificate must name a listed SAN (PERMISSION_DENIED).
 *   Health checks and server reflection stay open, so probes and `rlhf health` need no secret.
 * - what: a request whose bytes do not decode as the method's message is INVALID_ARGUMENT. grpc-js answers
 *   a throwing deserializer with INTERNAL, so `guardDecoding` makes deserializers return a marker instead
 *   and the interceptor turns the marker into the status.
 */
import * as grpc from '@grpc/grpc-js';
import { RlhfError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { authMetadataKey, checkBearer, type TokenSource } from './bearer-token.js';
import {
  type ClientAllowList,
  clientAllowed,
  describeSans,
  parseSubjectAltNames,
} from './client-identity.js';
import { toGrpcError } from './status.js';

export interface CallGuardOptions {
  token?: TokenSource;
  allowedClients?: ClientAllowList;
  logger: Logger;
}

/** Services any client may call: health checks and server reflection. */
const openServices = [
  '/grpc.health.v1.Health/',
  '/grpc.reflection.v1.ServerReflection/',
  '/grpc.reflection.v1alpha.ServerReflection/',
];

export function isOpenMethod(path: string): boolean {
  return openServices.some((prefix) => path.startsWith(prefix));
}

const undecodable = Symbol('undecodable request');

interface Undecodable {
  [undecodable]: string;
}

function isUndecodable(message: unknown): message is Undecodable {
  return typeof message === 'object' && message !== null && undecodable in message;
}

/** `definition` with deserializers that return a marker for bytes they cannot decode, instead of throwing. */
export function guardDecoding(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return { [undecodable]: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** The reason to refuse a call to `path`, or null to let it through. */
function refusal(
  o: CallGuardOptions,
  path: string,
  metadata: grpc.Metadata,
  call: grpc.ServerInterceptingCallInterface,
): RlhfError | null {
  if (isOpenMethod(path)) return null;
  if (o.allowedClients) {
    const cert = call.getAuthContext().sslPeerCertificate;
    const sans = parseSubjectAltNames(cert?.subjectaltname);
    if (!cert || !clientAllowed(o.allowedClients, sans)) {
      return new RlhfError(
        'PERMISSION_DENIED',
        cert ? `${describeSans(sans)}: not on this service's allow-list` : 'none presented',
        {
          field: 'client certificate',
          fix: "use a certificate whose DNS or URI SAN is in the server's --tls-allowed-clients",
        },
      );
    }
  }
  if (o.token) return checkBearer(metadata.get(authMetadataKey), o.token);
  return null;
}

/** The server interceptor enforcing `o` (a no-op check when `o` sets neither a token nor a list). */
export function callGuard(o: CallGuardOptions): grpc.ServerInterceptor {
  return (method, call) => {
    let ended = false;
    // Refused credentials are worth an operator's attention; undecodable bytes are the caller's bug.
    const end = (err: RlhfError, log: Record<string, unknown>): void => {
      ended = true;
      const level = err.code === 'INVALID_ARGUMENT' ? 'info' : 'warn';
      o.logger[level]({ method: method.path, peer: call.getPeer(), code: err.code, ...log }, err.message);
      const { code, details, metadata } = toGrpcError(err);
      call.sendStatus({ code, details, ...(metadata ? { metadata } : {}) });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const err = refusal(o, method.path, metadata, call);
            if (err) end(err, {});
            else pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            if (ended) return;
            if (isUndecodable(message)) {
              end(
                new RlhfError('INVALID_ARGUMENT', 'the request could not be decoded as a protobuf message', {
                  field: 'request',
                  fix: `encode the ${method.path} request with the rlhf.v1 protos (server reflection describes them)`,
                }),
                { decodeError: message[undecodable] },
              );
            } else pass(message);
          },
          onReceiveHalfClose: (pass) => {
            if (!ended) pass();
          },
        }),
    });
  };
}
