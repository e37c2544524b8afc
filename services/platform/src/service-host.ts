/**
 * Runs one service process: logger, metrics and probes, an optional NATS connection, the gRPC server, and an
 * orderly stop on SIGTERM. Each service supplies only its bindings; everything around them is the same.
 */
import type { Registry } from 'prom-client';
import { hfConfiguredInEnv } from './artifacts/hf-source.js';
import { s3ConfiguredInEnv } from './artifacts/s3-store.js';
import { ArtifactSandbox } from './artifacts/sandbox.js';
import type { ArtifactStore } from './artifacts/store.js';
import type { LogLevel } from './config/parse.js';
import type { TrainingBounds } from './config/training-bounds.js';
import { invalidArgument } from './errors.js';
import type { TokenSource } from './grpc/bearer-token.js';
import type { TlsFiles } from './grpc/server.js';
import {
  defaultMaxMessageBytes,
  type GrpcServiceBinding,
  type RunningGrpcServer,
  startGrpcServer,
} from './grpc/server.js';
import { onStopSignal } from './lifecycle.js';
import type { NatsAuth } from './nats/auth.js';
import { connectNats, type NatsConnection } from './nats/connection.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetricsRegistry, type ProbeServer, startProbeServer } from './observability/metrics.js';

export interface ServiceContext {
  logger: Logger;
  metrics: Registry;
  /** Null when the service runs without NATS (gRPC only). */
  nats: NatsConnection | null;
  /** Bounds on training jobs from the serve flags; unset: the service's own (tests, embedders). */
  trainingBounds?: TrainingBounds;
  /** What URIs from clients and stage work may name: the artifact roots, and nats-obj:// with NATS. */
  sandbox: ArtifactSandbox;
  /** Size limit of the model download cache in bytes (undefined: the cache's default). */
  modelCacheMaxBytes?: number;
  /** False: NATS serves the artifact store only, the service takes no stage work (--stage-work off). */
  stageWork?: boolean;
  /**
   * The artifact store to use instead of one over `nats` and `sandbox`: a run in one process hands the
   * services the store its stages use (Object Store keys kept as files under its output directory).
   */
  artifacts?: ArtifactStore;
}

/** A policy the OpenAI-compatible API serves under `id` (`--openai-model id=uri`). */
export interface OpenAiModelSpec {
  id: string;
  uri: string;
}

export interface OpenAiServeOptions {
  /** 0 picks a free port. */
  port: number;
  models: OpenAiModelSpec[];
}

/** What a service's OpenAI-compatible HTTP server gets from the process: where to bind, and whom to let in. */
export interface HttpApiOptions extends OpenAiServeOptions {
  host: string;
  /** The gRPC server's bearer token: the same secret guards the HTTP API. */
  token?: TokenSource;
  /** Largest request body, in bytes (the gRPC message limit). */
  maxBodyBytes: number;
}

export interface RunningHttpApi {
  port: number;
  /** Stops taking requests and waits for those in flight, up to graceMs. */
  close(graceMs: number): Promise<void>;
}

export interface ServiceModule {
  /** The name users type: `rlhf serve <name>`. */
  name: string;
  /** One line for `--help`. */
  summary: string;
  /**
   * Fully qualified names of the gRPC services its bindings serve, e.g. `rlhf.v1.RewardModelService` and
   * `rlhf.v1.TrainingJobsService` (health and reflection come with every server and are not listed).
   */
  grpcServiceNames: readonly string[];
  /** The gRPC implementations this service registers (empty until its RPCs exist). */
  bindings(ctx: ServiceContext): GrpcServiceBinding[] | Promise<GrpcServiceBinding[]>;
  /** Called once the server is up: start NATS workers here. Returns a function that stops them. */
  start?(ctx: ServiceContext): Promise<() => Promise<void>>;
  /** The OpenAI-compatible HTTP API, for a service that offers one (`--openai-port`); started after `start`. */
  openaiApi?(ctx: ServiceContext, options: HttpApiOptions): Promise<RunningHttpApi>;
}

export interface ServeOptions {
  host: string;
  port: number;
  natsUrl?: string;
  /** NATS credentials and TLS files (with natsUrl). */
  natsAuth?: NatsAuth;
  /** How long to wait for NATS at start-up; default forever (a service outlives a NATS restart). */
  natsStartWaitMs?: number;
  /** 0 picks a free port; undefined disables the probe/metrics endpoint. */
  metricsPort?: number;
  tls?: TlsFiles;
  /** When set, every call but health and reflection must carry this bearer token. */
  token?: TokenSource;
  trainingBounds?: TrainingBounds;
  logLevel?: LogLevel;
  maxMessageBytes?: number;
  reflection?: { files: string[]; includeDirs: string[] };
  /** Grace period for in-flight calls on SIGTERM. */
  drainMs?: number;
  /** Install SIGTERM/SIGINT handlers (off in tests that stop the service themselves). */
  handleSignals?: boolean;
  /** Directories file:// URIs from outside may name (--artifact-root); none: no file:// URIs at all. */
  artifactRoots?: string[];
  /** Size limit of the model download cache (--model-cache-max-gb). */
  modelCacheMaxBytes?: number;
  /** The OpenAI-compatible HTTP API (--openai-port), for a module that has one. */
  openai?: OpenAiServeOptions;
  /** False: take no stage work even with NATS (--stage-work off). Default true. */
  stageWork?: boolean;
}

export interface RunningService {
  grpcPort: number;
  metricsPort: number | null;
  /** Null when the OpenAI-compatible API is off. */
  openaiPort: number | null;
  grpc: RunningGrpcServer;
  context: ServiceContext;
  stop(): Promise<void>;
}

export async function serveService(module: ServiceModule, options: ServeOptions): Promise<RunningService> {
  if (options.openai && !module.openaiApi)
    throw invalidArgument(
      '--openai-port',
      `${module.name} has no OpenAI-compatible API`,
      'serve it on policy-generator, or leave --openai-port off',
    );
  const logger = createLogger(module.name, options.logLevel === undefined ? {} : { level: options.logLevel });
  const metrics = createMetricsRegistry(module.name);
  const nats = options.natsUrl
    ? await connectNats({
        url: options.natsUrl,
        ...(options.natsAuth ? { auth: options.natsAuth } : {}),
        startWaitMs: options.natsStartWaitMs ?? Number.POSITIVE_INFINITY,
        name: `rlhf-${module.name}`,
        logger,
      })
    : null;
  const sandbox = ArtifactSandbox.confined({
    roots: options.artifactRoots ?? [],
    nats: nats !== null,
    s3: s3ConfiguredInEnv(process.env),
    hf: hfConfiguredInEnv(process.env),
  });
  const context: ServiceContext = {
    logger,
    metrics,
    nats,
    ...(options.trainingBounds ? { trainingBounds: options.trainingBounds } : {}),
    sandbox,
    ...(options.modelCacheMaxBytes === undefined ? {} : { modelCacheMaxBytes: options.modelCacheMaxBytes }),
    ...(options.stageWork === false ? { stageWork: false } : {}),
  };
  logger.info(
    { artifactRoots: options.artifactRoots ?? [] },
    options.artifactRoots?.length
      ? 'file:// URIs are confined to the artifact roots'
      : 'no --artifact-root: file:// URIs from clients and stage work are refused',
  );

  const grpc = await startGrpcServer({
    host: options.host,
    port: options.port,
    services: await module.bindings(context),
    logger,
    ...(options.reflection ? { reflection: options.reflection } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.token ? { token: options.token } : {}),
    ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}),
  });

  let probes: ProbeServer | null = null;
  if (options.metricsPort !== undefined) {
    probes = await startProbeServer({
      registry: metrics,
      host: options.host,
      port: options.metricsPort,
      readiness: () => (nats?.isClosed() ? 'NATS connection closed' : null),
    });
  }
  const stopWorkers = module.start ? await module.start(context) : async () => {};
  let openai: RunningHttpApi | null = null;
  if (options.openai && module.openaiApi) {
    try {
      openai = await module.openaiApi(context, {
        ...options.openai,
        host: options.host,
        maxBodyBytes: options.maxMessageBytes ?? defaultMaxMessageBytes,
        ...(options.token ? { token: options.token } : {}),
      });
    } catch (err) {
      await stopWorkers();
      await grpc.shutdown(0);
      await probes?.close();
      if (nats && !nats.isClosed()) await nats.close();
      throw err;
    }
  }

  let removeSignals = (): void => {};
  const stop = async (): Promise<void> => {
    removeSignals();
    // HTTP callers are turned away first, then their requests in flight finish with the gRPC calls.
    const httpClosed = openai?.close(options.drainMs ?? 10_000);
    await stopWorkers();
    await httpClosed;
    await grpc.shutdown(options.drainMs ?? 10_000);
    await probes?.close();
    if (nats && !nats.isClosed()) await nats.drain();
    logger.info('stopped');
  };
  if (options.handleSignals) removeSignals = onStopSignal(logger, stop);

  return {
    grpcPort: grpc.port,
    metricsPort: probes?.port ?? null,
    openaiPort: openai?.port ?? null,
    grpc,
    context,
    stop,
  };
}
