/**
 * gRPC server bootstrap shared by every service: health (`grpc.health.v1`), reflection, message size limits,
 * optional TLS, the call guard (bearer token, client allow-list, undecodable requests; call-guard.ts), and a
 * graceful drain: stop accepting, report NOT_SERVING, let in-flight calls finish within a grace period, then
 * cut what is left.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { RlhfError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { TokenSource } from './bearer-token.js';
import { callGuard, guardDecoding } from './call-guard.js';
import type { ClientAllowList } from './client-identity.js';
import { readPem } from './pem-file.js';

export interface GrpcServiceBinding {
  /** Fully qualified service name, e.g. `rlhf.v1.RewardModelService`; also its health-check key. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  clientCaFile?: string;
  /** With clientCaFile: only certificates naming one of these SANs may call (health and reflection aside). */
  allowedClients?: ClientAllowList;
}

export interface GrpcServerOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  services: GrpcServiceBinding[];
  /**
   * Proto files (and include dirs) that hold the services' definitions, for server reflection. Reflection
   * lists exactly the services this server answers (the bindings and health), whatever else the files hold.
   */
  reflection?: { files: string[]; includeDirs: string[] };
  tls?: TlsFiles;
  /** When set, every call but health and reflection must carry `authorization: Bearer <token>`. */
  token?: TokenSource;
  /** Largest request or response message, in bytes. */
  maxMessageBytes?: number;
  logger: Logger;
}

export interface RunningGrpcServer {
  port: number;
  server: grpc.Server;
  health: HealthImplementation;
  /** Drain: NOT_SERVING, wait up to graceMs for in-flight calls, then force. Safe to call twice. */
  shutdown(graceMs?: number): Promise<void>;
}

/** The gRPC health service every server answers (grpc-health-check). */
export const healthServiceName = 'grpc.health.v1.Health';

export const defaultMaxMessageBytes = 64 * 1024 * 1024;

export function loadReflectionPackage(files: string[], includeDirs: string[]): PackageDefinition {
  return loadSync(files, { includeDirs, keepCase: true, longs: String, enums: String, defaults: true });
}

function credentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const ca = tls.clientCaFile ? readPem(tls.clientCaFile, '--tls-client-ca') : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readPem(tls.certFile, '--tls-cert'), private_key: readPem(tls.keyFile, '--tls-key') }],
    ca !== null,
  );
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The warning for a server others can reach without TLS or a token, or null when it is not one. */
export function exposureWarning(host: string, tls: boolean, token: boolean): string | null {
  if (isLoopbackHost(host) || tls || token) return null;
  return `serving ${host} in plaintext without a token: anyone who reaches this port may call every rpc; pass --auth-token-file (or RLHF_AUTH_TOKEN_FILE) and/or --tls-cert/--tls-key, or bind 127.0.0.1 with --host`;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const maxBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  if (options.tls?.allowedClients && !options.tls.clientCaFile)
    throw new RlhfError('INVALID_ARGUMENT', 'an allow-list of client certificates needs mutual TLS', {
      field: '--tls-allowed-clients',
      fix: 'pass --tls-client-ca, the CA that signs the client certificates',
    });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    // Nothing here serves channelz, so its per-call bookkeeping (about 1% of a busy generator) is skipped.
    'grpc.enable_channelz': 0,
    interceptors: [
      callGuard({
        logger: options.logger,
        ...(options.token ? { token: options.token } : {}),
        ...(options.tls?.allowedClients ? { allowedClients: options.tls.allowedClients } : {}),
      }),
    ],
  });
  // Every service, the libraries' health and reflection included, decodes through the guard.
  const guarded: Pick<grpc.Server, 'addService'> = {
    addService: (definition, implementation) => server.addService(guardDecoding(definition), implementation),
  };
  // Health knows exactly the services bound here (and '' for the whole server).
  const names = options.services.map((s) => s.name);
  const health = new HealthImplementation({
    '': 'SERVING',
    ...Object.fromEntries(names.map((n) => [n, 'SERVING'])),
  });
  health.addToServer(guarded as grpc.Server);
  if (options.reflection) {
    // Describe the health service too, so a client sees everything this server answers.
    const files = [...options.reflection.files, healthProtoPath];
    const pkg = loadReflectionPackage(files, options.reflection.includeDirs);
    // Only what this server answers: a client discovering it must not be offered a service it would
    // answer UNIMPLEMENTED.
    const served = [...names, healthServiceName];
    new ReflectionService(pkg, { services: served }).addToServer(guarded);
  }
  for (const s of options.services) guarded.addService(s.definition, s.implementation);

  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials(options.tls), (err, boundPort) => {
      if (err) {
        reject(
          new RlhfError('UNAVAILABLE', `cannot listen on ${address}: ${err.message}`, {
            field: '--port',
            fix: 'pick a free port, or --port 0 for any free one',
          }),
        );
      } else resolve(boundPort);
    });
  });
  options.logger.info(
    {
      port,
      services: names,
      tls: options.tls === undefined ? 'off' : options.tls.clientCaFile ? 'mutual' : 'server',
      auth: options.token ? `bearer token (${options.token.origin})` : 'none',
      ...(options.tls?.allowedClients
        ? { allowedClients: [...options.tls.allowedClients.dns, ...options.tls.allowedClients.uris] }
        : {}),
    },
    'gRPC server listening',
  );
  const exposed = exposureWarning(options.host, options.tls !== undefined, options.token !== undefined);
  if (exposed) options.logger.warn({ host: options.host, port }, exposed);

  let closing: Promise<void> | null = null;
  const shutdown = (graceMs = 10_000): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const n of ['', ...names]) health.setStatus(n, 'NOT_SERVING');
      const timer = setTimeout(() => {
        options.logger.warn({ graceMs }, 'grace period over; cancelling in-flight calls');
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return closing;
  };
  return { port, server, health, shutdown };
}
