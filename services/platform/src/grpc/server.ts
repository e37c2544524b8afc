/**
 * gRPC server bootstrap shared by every service: health (`grpc.health.v1`), reflection, message size limits,
 * optional TLS, and a graceful drain: stop accepting, report NOT_SERVING, let in-flight calls finish within a
 * grace period, then cut what is left.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { RlhfError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

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
}

export interface GrpcServerOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  services: GrpcServiceBinding[];
  /** Extra names reported SERVING by the health service (e.g. a service whose RPCs come later). */
  healthNames?: string[];
  /** Proto files (and include dirs) to describe through server reflection. */
  reflection?: { files: string[]; includeDirs: string[] };
  tls?: TlsFiles;
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

export const defaultMaxMessageBytes = 64 * 1024 * 1024;

export function loadReflectionPackage(files: string[], includeDirs: string[]): PackageDefinition {
  return loadSync(files, { includeDirs, keepCase: true, longs: String, enums: String, defaults: true });
}

function credentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const read = (path: string, field: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new RlhfError('INVALID_ARGUMENT', `cannot read ${path}`, {
        field,
        fix: 'pass a readable PEM file',
        cause,
      });
    }
  };
  const ca = tls.clientCaFile ? read(tls.clientCaFile, '--tls-client-ca') : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: read(tls.certFile, '--tls-cert'), private_key: read(tls.keyFile, '--tls-key') }],
    ca !== null,
  );
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const maxBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    // Nothing here serves channelz, so its per-call bookkeeping (about 1% of a busy generator) is skipped.
    'grpc.enable_channelz': 0,
  });
  const names = [...options.services.map((s) => s.name), ...(options.healthNames ?? [])];
  const health = new HealthImplementation({
    '': 'SERVING',
    ...Object.fromEntries(names.map((n) => [n, 'SERVING'])),
  });
  health.addToServer(server);
  if (options.reflection) {
    // Describe the health service too, so a client sees everything this server answers.
    const files = [...options.reflection.files, healthProtoPath];
    const pkg = loadReflectionPackage(files, options.reflection.includeDirs);
    new ReflectionService(pkg).addToServer(server);
  }
  for (const s of options.services) server.addService(s.definition, s.implementation);

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
  options.logger.info({ port, services: names, tls: options.tls !== undefined }, 'gRPC server listening');

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
