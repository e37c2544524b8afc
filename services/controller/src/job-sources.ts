/**
 * Where the stage pods of a run read models and data from besides NATS: an S3-protocol store (the chart's
 * `artifacts.s3`, the variables s3ConfigFromEnv in @rlhf/platform reads, credentials from a Secret), the
 * Hugging Face Hub (the chart's `huggingface`: HF_HOME on a volume, HF_TOKEN from a Secret) and the run's
 * own PersistentVolumeClaims (spec.placement.volumes). The controller gets the chart's settings as JSON
 * (RLHF_WORKER_S3, RLHF_WORKER_HF), checked here: a bad entry would make every Job invalid.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { invalidArgument } from '@rlhf/platform/core';
import type { RunVolume } from '@rlhf/run-spec';

/** The chart's `artifacts.s3`: empty strings are unset. */
export interface S3JobConfig {
  endpoint?: string;
  region?: string;
  /** "true" or "false"; unset: path-style exactly when an endpoint is set. */
  pathStyle?: string;
  /** A Secret with the key pair; unset: the pod's identity (e.g. IRSA) provides credentials. */
  existingSecret?: string;
  accessKeyIdKey?: string;
  secretAccessKeyKey?: string;
}

/** The chart's `huggingface`. */
export interface HfJobConfig {
  enabled?: boolean;
  /** Where HF_HOME lives: a PersistentVolumeClaim (shared by the pods, so a model downloads once), else an emptyDir. */
  cache?: { claimName?: string; sizeLimit?: string };
  /** HF_ENDPOINT: a Hub mirror; unset: huggingface.co. */
  endpoint?: string;
  /** HF_HUB_OFFLINE=1: read the cache only. */
  offline?: boolean;
  /** A Secret holding HF_TOKEN, for gated and private models. */
  tokenSecret?: { name?: string; key?: string };
}

export const hfHome = '/var/cache/huggingface';

const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const secretKey = /^[-._a-zA-Z0-9]{1,253}$/;

function parseJsonObject(
  raw: string | undefined,
  field: string,
  fix: string,
): Record<string, unknown> | null {
  if (raw === undefined || raw.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalidArgument(field, 'is not JSON', fix);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(field, 'must be a JSON object', fix);
  return value as Record<string, unknown>;
}

function optionalString(
  o: Record<string, unknown>,
  key: string,
  field: string,
  fix: string,
): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${field}.${key}`, 'must be a string', fix);
  return v;
}

/** RLHF_WORKER_S3 (the chart's artifacts.s3 as JSON), checked; null when S3 is not configured. */
export function parseS3JobConfig(raw: string | undefined, field = 'RLHF_WORKER_S3'): S3JobConfig | null {
  const fix = 'fix artifacts.s3 in the chart values';
  const o = parseJsonObject(raw, field, fix);
  if (!o) return null;
  const s = (k: string) => optionalString(o, k, field, fix);
  const config: S3JobConfig = {};
  const endpoint = s('endpoint');
  if (endpoint !== undefined) {
    if (!/^https?:\/\/[^\s]+$/.test(endpoint))
      throw invalidArgument(`${field}.endpoint`, `${endpoint} is not an http(s) URL`, fix);
    config.endpoint = endpoint;
  }
  const region = s('region');
  if (region !== undefined) {
    if (!/^[a-z0-9-]{1,64}$/.test(region))
      throw invalidArgument(`${field}.region`, `"${region}" is not a region name`, fix);
    config.region = region;
  }
  const pathStyle = s('pathStyle');
  if (pathStyle !== undefined) {
    if (!['true', 'false'].includes(pathStyle))
      throw invalidArgument(`${field}.pathStyle`, `must be "true", "false" or "", got "${pathStyle}"`, fix);
    config.pathStyle = pathStyle;
  }
  const secret = s('existingSecret');
  if (secret !== undefined) {
    if (!dnsSubdomain.test(secret))
      throw invalidArgument(`${field}.existingSecret`, `"${secret}" is not a Secret name`, fix);
    config.existingSecret = secret;
    for (const [k, dflt] of [
      ['accessKeyIdKey', 'AWS_ACCESS_KEY_ID'],
      ['secretAccessKeyKey', 'AWS_SECRET_ACCESS_KEY'],
    ] as const) {
      const key = s(k) ?? dflt;
      if (!secretKey.test(key)) throw invalidArgument(`${field}.${k}`, `"${key}" is not a Secret key`, fix);
      config[k] = key;
    }
  }
  // Neither an endpoint nor a region: the chart leaves S3 off (the services take no s3:// URIs either).
  return config.endpoint || config.region ? config : null;
}

/** RLHF_WORKER_HF (the chart's huggingface as JSON), checked; null when the Hub is not enabled. */
export function parseHfJobConfig(raw: string | undefined, field = 'RLHF_WORKER_HF'): HfJobConfig | null {
  const fix = 'fix huggingface in the chart values';
  const o = parseJsonObject(raw, field, fix);
  if (o?.enabled !== true) return null;
  const config: HfJobConfig = { enabled: true };
  const cache = (o.cache ?? {}) as Record<string, unknown>;
  if (typeof cache !== 'object' || Array.isArray(cache))
    throw invalidArgument(`${field}.cache`, 'must be an object', fix);
  const claimName = optionalString(cache, 'claimName', `${field}.cache`, fix);
  const sizeLimit = optionalString(cache, 'sizeLimit', `${field}.cache`, fix);
  if (claimName !== undefined && !dnsSubdomain.test(claimName))
    throw invalidArgument(`${field}.cache.claimName`, `"${claimName}" is not a claim name`, fix);
  if (sizeLimit !== undefined && !/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/.test(sizeLimit))
    throw invalidArgument(`${field}.cache.sizeLimit`, `"${sizeLimit}" is not a quantity`, fix);
  config.cache = { ...(claimName ? { claimName } : {}), ...(sizeLimit ? { sizeLimit } : {}) };
  const endpoint = optionalString(o, 'endpoint', field, fix);
  if (endpoint !== undefined) {
    if (!/^https?:\/\/[^\s]+$/.test(endpoint))
      throw invalidArgument(`${field}.endpoint`, `${endpoint} is not an http(s) URL`, fix);
    config.endpoint = endpoint;
  }
  if (o.offline !== undefined && typeof o.offline !== 'boolean')
    throw invalidArgument(`${field}.offline`, 'must be true or false', fix);
  if (o.offline === true) config.offline = true;
  const token = (o.tokenSecret ?? {}) as Record<string, unknown>;
  const tokenName = optionalString(token, 'name', `${field}.tokenSecret`, fix);
  if (tokenName !== undefined) {
    const key = optionalString(token, 'key', `${field}.tokenSecret`, fix) ?? 'HF_TOKEN';
    if (!dnsSubdomain.test(tokenName) || !secretKey.test(key))
      throw invalidArgument(`${field}.tokenSecret`, 'needs a Secret name and key', fix);
    config.tokenSecret = { name: tokenName, key };
  }
  return config;
}

/** The stage container's S3 variables: what s3ConfigFromEnv reads, credentials by secretKeyRef. */
export function s3JobEnv(s3: S3JobConfig | null | undefined): V1EnvVar[] {
  if (!s3) return [];
  const env: V1EnvVar[] = [];
  if (s3.endpoint) env.push({ name: 'AWS_ENDPOINT_URL_S3', value: s3.endpoint });
  env.push({ name: 'AWS_REGION', value: s3.region ?? 'us-east-1' });
  if (s3.pathStyle) env.push({ name: 'RLHF_S3_PATH_STYLE', value: s3.pathStyle });
  if (s3.existingSecret) {
    const ref = (key: string) => ({ secretKeyRef: { name: s3.existingSecret as string, key } });
    env.push(
      { name: 'AWS_ACCESS_KEY_ID', valueFrom: ref(s3.accessKeyIdKey ?? 'AWS_ACCESS_KEY_ID') },
      { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: ref(s3.secretAccessKeyKey ?? 'AWS_SECRET_ACCESS_KEY') },
    );
  }
  return env;
}

/** The stage container's Hub variables: HF_HOME on the cache volume, the endpoint, offline, the token. */
export function hfJobEnv(hf: HfJobConfig | null | undefined): V1EnvVar[] {
  if (!hf) return [];
  return [
    { name: 'HF_HOME', value: hfHome },
    ...(hf.endpoint ? [{ name: 'HF_ENDPOINT', value: hf.endpoint }] : []),
    ...(hf.offline ? [{ name: 'HF_HUB_OFFLINE', value: '1' }] : []),
    ...(hf.tokenSecret?.name
      ? [
          {
            name: 'HF_TOKEN',
            valueFrom: { secretKeyRef: { name: hf.tokenSecret.name, key: hf.tokenSecret.key ?? 'HF_TOKEN' } },
          },
        ]
      : []),
  ];
}

/** The Hugging Face cache volume and its mount, when the Hub is enabled. */
export function hfVolume(hf: HfJobConfig | null | undefined): { volume: V1Volume; mount: V1VolumeMount }[] {
  if (!hf) return [];
  const claimName = hf.cache?.claimName;
  const volume: V1Volume = claimName
    ? { name: 'hf-cache', persistentVolumeClaim: { claimName } }
    : { name: 'hf-cache', emptyDir: hf.cache?.sizeLimit ? { sizeLimit: hf.cache.sizeLimit } : {} };
  return [{ volume, mount: { name: 'hf-cache', mountPath: hfHome } }];
}

/** The run's spec.placement.volumes as pod volumes (`run-<name>`) and mounts. */
export function runVolumes(
  volumes: readonly RunVolume[] | undefined,
): { volume: V1Volume; mount: V1VolumeMount }[] {
  return (volumes ?? []).map((v) => ({
    volume: {
      name: `run-${v.name}`,
      persistentVolumeClaim: { claimName: v.claimName, ...(v.readOnly ? { readOnly: true } : {}) },
    },
    mount: { name: `run-${v.name}`, mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}) },
  }));
}
