/**
 * The flags of a service process, defined once: `rlhf serve <service>` and each service's own entry point
 * build their parsers and their `--help` from this table, and resolve the values here.
 */
import { invalidArgument } from '../errors.js';
import { authTokenEnv, type TokenSource, tokenFromFile, tokenFromValue } from '../grpc/bearer-token.js';
import { parseAllowedClients } from '../grpc/client-identity.js';
import type { OpenAiModelSpec, OpenAiServeOptions, ServeOptions } from '../service-host.js';
import { parseArtifactRoots, parseModelCacheBytes } from './artifact-flags.js';
import { resolveSetting } from './env.js';
import { natsAuthFlags, natsStartWaitFlag, resolveNatsFlags } from './nats-flags.js';
import { parseDuration, parseHost, parseIntegerIn, parseLogLevel, parseNatsUrl, parsePort } from './parse.js';
import { defaultTrainingBounds, type TrainingBounds } from './training-bounds.js';

export interface FlagSpec {
  /** Long flag without dashes, e.g. `nats-url`. */
  name: string;
  /** Placeholder shown in help, e.g. `URL`. */
  value: string;
  env?: string;
  description: string;
  default?: string;
  /** May be given more than once (each value kept, in order); its env variable is colon-separated. */
  repeatable?: boolean;
}

export const serveFlags: FlagSpec[] = [
  {
    name: 'port',
    value: 'N',
    env: 'PORT',
    description: 'gRPC port; 0 picks a free one and prints it',
    default: '50051',
  },
  {
    name: 'host',
    value: 'ADDR',
    env: 'HOST',
    description: 'address to bind (gRPC and metrics); 0.0.0.0 when KUBERNETES_SERVICE_HOST is set',
    default: '127.0.0.1',
  },
  {
    name: 'nats-url',
    value: 'URL',
    env: 'NATS_URL',
    description: 'NATS server(s), e.g. nats://127.0.0.1:4222; without it the service runs gRPC only',
  },
  {
    name: 'metrics-port',
    value: 'N',
    env: 'METRICS_PORT',
    description: 'port for /metrics, /healthz, /readyz; 0 picks a free one; "off" disables',
    default: '9090',
  },
  {
    name: 'tls-cert',
    value: 'FILE',
    env: 'TLS_CERT',
    description: 'PEM certificate; enables TLS with --tls-key',
  },
  { name: 'tls-key', value: 'FILE', env: 'TLS_KEY', description: 'PEM private key for --tls-cert' },
  {
    name: 'tls-client-ca',
    value: 'FILE',
    env: 'TLS_CLIENT_CA',
    description: 'PEM CA; clients must present certificates it signed',
  },
  {
    name: 'tls-allowed-clients',
    value: 'LIST',
    env: 'TLS_ALLOWED_CLIENTS',
    description:
      'with --tls-client-ca: client certificate SANs that may call, comma-separated (dns:NAME, uri:URI); others get PERMISSION_DENIED',
  },
  {
    name: 'auth-token-file',
    value: 'FILE',
    env: 'RLHF_AUTH_TOKEN_FILE',
    description: `file holding the bearer token every call but health and reflection must carry (or the token itself in ${authTokenEnv})`,
  },
  {
    name: 'max-message-mb',
    value: 'N',
    env: 'MAX_MESSAGE_MB',
    description: 'largest gRPC message in MiB (bigger requests get RESOURCE_EXHAUSTED)',
    default: '64',
  },
  {
    name: 'drain',
    value: 'DURATION',
    env: 'DRAIN_TIMEOUT',
    description: 'grace for in-flight calls on SIGTERM',
    default: '10s',
  },
  {
    name: 'train-max-steps',
    value: 'N',
    env: 'TRAIN_MAX_STEPS',
    description: 'most optimizer steps a training job may take (max_steps, or epochs over the data)',
    default: String(defaultTrainingBounds.maxSteps),
  },
  {
    name: 'train-max-epochs',
    value: 'N',
    env: 'TRAIN_MAX_EPOCHS',
    description: 'most passes over the data a training job may ask for',
    default: String(defaultTrainingBounds.maxEpochs),
  },
  {
    name: 'train-max-dataset-mb',
    value: 'N',
    env: 'TRAIN_MAX_DATASET_MB',
    description: 'largest training or held-out dataset in MiB',
    default: String(defaultTrainingBounds.maxDatasetBytes / (1024 * 1024)),
  },
  {
    name: 'train-max-queued',
    value: 'N',
    env: 'TRAIN_MAX_QUEUED',
    description: 'training jobs that may wait behind the running one',
    default: String(defaultTrainingBounds.maxQueued),
  },
  {
    name: 'log-level',
    value: 'LEVEL',
    env: 'LOG_LEVEL',
    description: 'trace|debug|info|warn|error',
    default: 'info',
  },
  {
    name: 'artifact-root',
    value: 'DIR',
    env: 'RLHF_ARTIFACT_ROOTS',
    description:
      'directory whose files file:// URIs from clients and stage work may name (repeatable; env colon-separated); without it the service takes no file:// URIs',
    repeatable: true,
  },
  {
    name: 'model-cache-max-gb',
    value: 'N',
    env: 'RLHF_MODEL_CACHE_MAX_GB',
    description: 'size limit of the model download cache; least recently used entries are pruned',
    default: '20',
  },
  {
    name: 'stage-work',
    value: 'on|off',
    env: 'RLHF_STAGE_WORK',
    description:
      "with NATS: serve the service's stage work queues (on), or use NATS only for the artifact store (off: e.g. a policy generator serving runs' policies on --openai-port without taking shards)",
    default: 'on',
  },
  {
    name: 'openai-port',
    value: 'N',
    env: 'OPENAI_PORT',
    description:
      'policy-generator: port of the OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions), same host and bearer token as gRPC; 0 picks a free one; "off" disables',
    default: 'off',
  },
  {
    name: 'openai-model',
    value: '[NAME=]URI',
    env: 'OPENAI_MODELS',
    description:
      'with --openai-port: a policy loaded at start and listed by /v1/models under NAME (default: the URI itself); repeatable (env comma-separated)',
    repeatable: true,
  },
  ...natsAuthFlags,
  { ...natsStartWaitFlag, default: 'forever' },
];

/** Flag values as typed (camelCase keys, e.g. `natsUrl`), before validation; a repeatable flag's are a list. */
export type RawServeFlags = Partial<Record<string, string | string[]>>;

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function lookup<T>(
  raw: RawServeFlags,
  env: NodeJS.ProcessEnv,
  name: string,
  parse: (v: string, f: string) => T,
): T | undefined {
  const spec = serveFlags.find((f) => f.name === name);
  if (!spec) throw new Error(`unknown serve flag ${name}`);
  const given = raw[camel(name)];
  const value = resolveSetting(
    { flag: `--${name}`, ...(spec.env ? { env: spec.env } : {}), parse },
    Array.isArray(given) ? given.join(':') : given,
    env,
  );
  return value ?? (spec.default !== undefined ? parse(spec.default, `--${name}`) : undefined);
}

/** The token a server checks: --auth-token-file, else RLHF_AUTH_TOKEN_FILE, else RLHF_AUTH_TOKEN itself. */
function resolveToken(raw: RawServeFlags, env: NodeJS.ProcessEnv): TokenSource | undefined {
  const file = lookup(raw, env, 'auth-token-file', (v) => v);
  if (file !== undefined) return tokenFromFile(file);
  const value = env[authTokenEnv];
  return value !== undefined && value !== '' ? tokenFromValue(value, authTokenEnv) : undefined;
}

function resolveTrainingBounds(raw: RawServeFlags, env: NodeJS.ProcessEnv): TrainingBounds {
  const int = (name: string, max: number) =>
    lookup(raw, env, name, (v, f) => parseIntegerIn(v, f, 1, max)) as number;
  return {
    maxSteps: int('train-max-steps', 1_000_000_000),
    maxEpochs: int('train-max-epochs', 1_000_000),
    maxDatasetBytes: int('train-max-dataset-mb', 1024 * 1024) * 1024 * 1024,
    maxQueued: int('train-max-queued', 100_000),
  };
}

export function resolveServeOptions(raw: RawServeFlags, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const port = lookup(raw, env, 'port', parsePort) as number;
  // Outside Kubernetes only this machine may connect unless asked; in a pod the Service must reach it.
  const hostGiven = raw.host !== undefined || (env.HOST !== undefined && env.HOST !== '');
  const inKubernetes = env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '';
  const host = !hostGiven && inKubernetes ? '0.0.0.0' : (lookup(raw, env, 'host', parseHost) as string);
  const natsUrl = lookup(raw, env, 'nats-url', parseNatsUrl);
  const metricsPort = lookup(raw, env, 'metrics-port', (v, f) => (v.trim() === 'off' ? -1 : parsePort(v, f)));
  const certFile = lookup(raw, env, 'tls-cert', (v) => v);
  const keyFile = lookup(raw, env, 'tls-key', (v) => v);
  const clientCaFile = lookup(raw, env, 'tls-client-ca', (v) => v);
  const allowedClients = lookup(raw, env, 'tls-allowed-clients', parseAllowedClients);
  if (allowedClients && !clientCaFile)
    throw invalidArgument(
      '--tls-allowed-clients',
      'an allow-list of client certificates needs mutual TLS',
      'pass --tls-client-ca (and --tls-cert, --tls-key) too',
    );
  const token = resolveToken(raw, env);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw invalidArgument(
      certFile ? '--tls-key' : '--tls-cert',
      'TLS needs both a certificate and a key',
      'pass --tls-cert and --tls-key together',
    );
  }
  const maxMb = lookup(raw, env, 'max-message-mb', (v, f) => parseIntegerIn(v, f, 1, 2047)) as number;
  const drainMs = lookup(raw, env, 'drain', parseDuration) as number;
  const logLevel = lookup(raw, env, 'log-level', parseLogLevel);
  const artifactRoots = lookup(raw, env, 'artifact-root', parseArtifactRoots) ?? [];
  // The NATS flags are single-valued; only repeatable flags (--artifact-root) come as lists.
  const single: Partial<Record<string, string>> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') single[k] = v;
  const nats = resolveNatsFlags(single, env, Number.POSITIVE_INFINITY);
  const modelCacheMaxBytes = lookup(raw, env, 'model-cache-max-gb', parseModelCacheBytes) as number;
  const openai = resolveOpenAiFlags(raw, env);
  const stageWork = lookup(raw, env, 'stage-work', (v, f) => {
    if (v === 'on' || v === 'off') return v === 'on';
    throw invalidArgument(f, `must be on or off, got ${JSON.stringify(v)}`, 'pass on or off');
  }) as boolean;
  return {
    host,
    port,
    maxMessageBytes: maxMb * 1024 * 1024,
    drainMs,
    ...(natsUrl !== undefined ? { natsUrl, natsAuth: nats.auth, natsStartWaitMs: nats.startWaitMs } : {}),
    ...(metricsPort !== undefined && metricsPort >= 0 ? { metricsPort } : {}),
    ...(certFile && keyFile
      ? {
          tls: {
            certFile,
            keyFile,
            ...(clientCaFile ? { clientCaFile } : {}),
            ...(allowedClients ? { allowedClients } : {}),
          },
        }
      : {}),
    ...(token ? { token } : {}),
    trainingBounds: resolveTrainingBounds(raw, env),
    ...(logLevel !== undefined ? { logLevel } : {}),
    artifactRoots,
    modelCacheMaxBytes,
    ...(openai ? { openai } : {}),
    ...(stageWork ? {} : { stageWork: false }),
  };
}

/** --openai-port and its --openai-model list; undefined when the port is off. */
function resolveOpenAiFlags(raw: RawServeFlags, env: NodeJS.ProcessEnv): OpenAiServeOptions | undefined {
  const port = lookup(raw, env, 'openai-port', (v, f) =>
    v.trim() === 'off' ? -1 : parsePort(v, f),
  ) as number;
  // The flag repeats; the variable, like RLHF_ARTIFACT_ROOTS, is one list (commas: URIs hold colons).
  const given = raw.openaiModel;
  const fromEnv = env.OPENAI_MODELS;
  const list =
    given !== undefined
      ? Array.isArray(given)
        ? given
        : [given]
      : fromEnv
        ? fromEnv.split(',').filter((m) => m.trim() !== '')
        : [];
  const field = given !== undefined ? '--openai-model' : 'OPENAI_MODELS';
  const models = list.map((m) => parseOpenAiModel(m, field));
  if (port < 0) {
    if (models.length > 0)
      throw invalidArgument(field, 'names models for an OpenAI API that is off', 'pass --openai-port N too');
    return undefined;
  }
  const ids = new Set<string>();
  for (const m of models) {
    if (ids.has(m.id))
      throw invalidArgument(field, `the model id ${m.id} is given twice`, 'give each model its own NAME=');
    ids.add(m.id);
  }
  return { port, models };
}

/** `NAME=URI` or a bare URI (its own id). */
export function parseOpenAiModel(value: string, field: string): OpenAiModelSpec {
  const v = value.trim();
  const eq = v.indexOf('=');
  const scheme = v.indexOf('://');
  // An `=` after the scheme belongs to the URI (a query), not to a NAME.
  const named = eq > 0 && (scheme < 0 || eq < scheme);
  const id = named ? v.slice(0, eq) : v;
  const uri = named ? v.slice(eq + 1) : v;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+$/.test(uri))
    throw invalidArgument(
      field,
      `${JSON.stringify(value)} does not end in a model URI`,
      'give NAME=nats-obj://bucket/key or NAME=file:///dir (or the URI alone)',
    );
  if (!/^[\x21-\x7e]{1,256}$/.test(id))
    throw invalidArgument(
      field,
      `the model id ${JSON.stringify(id)} is not 1..256 printable ASCII characters`,
      'use a name such as policy or iter-2',
    );
  return { id, uri };
}
