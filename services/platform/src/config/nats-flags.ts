/**
 * The NATS flags every process that connects takes (`rlhf serve`, `rlhf run`, `rlhf stage`, `rlhf
 * controller`, `rlhf model pull`), defined once with their environment variables, and their resolution into
 * one NATS client config (connectNats's url, auth, startWaitMs). Secrets are only ever file paths here, so `--help` and logs never see them.
 */

import { isAbsolute, resolve } from 'node:path';
import { resolveSetting } from './env.js';
import { parseDuration, parseNatsUrl } from './parse.js';

/** Credential and TLS files for NATS; every path is read when the connection is made. */
export interface NatsAuth {
  user?: string;
  passwordFile?: string;
  tokenFile?: string;
  /** JWT + NKey seed, as `nsc` writes it. */
  credsFile?: string;
  /** An NKey user seed (`SU...`). */
  nkeySeedFile?: string;
  /** PEM CA bundle the server's certificate must chain to. */
  tlsCaFile?: string;
  /** PEM client certificate and key, for servers that verify clients. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/**
 * Each credential field's flag, variable, value name and help line, defined once: errors name what the
 * operator typed, `--help` lists them, and child processes get them as variables.
 */
export const natsAuthFields: Record<
  keyof NatsAuth,
  { flag: string; env: string; value: string; description: string }
> = {
  user: {
    flag: '--nats-user',
    env: 'NATS_USER',
    value: 'NAME',
    description: 'NATS user (its password from --nats-password-file)',
  },
  passwordFile: {
    flag: '--nats-password-file',
    env: 'NATS_PASSWORD_FILE',
    value: 'FILE',
    description: "file holding the NATS user's password",
  },
  tokenFile: {
    flag: '--nats-token-file',
    env: 'NATS_TOKEN_FILE',
    value: 'FILE',
    description: 'file holding a NATS token',
  },
  credsFile: {
    flag: '--nats-creds',
    env: 'NATS_CREDS',
    value: 'FILE',
    description: 'NATS creds file (user JWT + NKey seed)',
  },
  nkeySeedFile: {
    flag: '--nats-nkey',
    env: 'NATS_NKEY_SEED_FILE',
    value: 'FILE',
    description: 'file holding an NKey user seed',
  },
  tlsCaFile: {
    flag: '--nats-tls-ca',
    env: 'NATS_TLS_CA',
    value: 'FILE',
    description: "PEM CA for the NATS server's certificate",
  },
  tlsCertFile: {
    flag: '--nats-tls-cert',
    env: 'NATS_TLS_CERT',
    value: 'FILE',
    description: 'PEM client certificate for NATS (with --nats-tls-key)',
  },
  tlsKeyFile: {
    flag: '--nats-tls-key',
    env: 'NATS_TLS_KEY',
    value: 'FILE',
    description: 'PEM private key for --nats-tls-cert',
  },
};

const authKeys = Object.keys(natsAuthFields) as Array<keyof NatsAuth>;

/** The environment that gives a child process the same credentials (paths made absolute by the caller). */
export function natsAuthEnv(auth: NatsAuth): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(auth) as Array<[keyof NatsAuth, string | undefined]>) {
    if (value !== undefined) env[natsAuthFields[key].env] = value;
  }
  return env;
}

/** Same shape as serve-flags' FlagSpec. */
export interface NatsFlagSpec {
  name: string;
  value: string;
  env: string;
  description: string;
  default?: string;
}

/** Credential and TLS flags (without --nats-url, whose wording differs per command). */
export const natsAuthFlags: NatsFlagSpec[] = authKeys.map((k) => {
  const { flag, env, value, description } = natsAuthFields[k];
  return { name: flag.slice(2), env, value, description };
});

export const natsStartWaitFlag: NatsFlagSpec = {
  name: 'nats-start-wait',
  value: 'DURATION',
  env: 'NATS_START_WAIT',
  description: 'how long to wait for NATS at start-up before giving up; "forever" never gives up',
};

/** `forever` or a duration, in ms (Infinity for forever). */
export function parseStartWait(raw: string, field: string): number {
  return raw.trim() === 'forever' ? Number.POSITIVE_INFINITY : parseDuration(raw, field);
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Flag values as typed (camelCase keys, e.g. `natsUrl`, `natsPasswordFile`). */
export type RawNatsFlags = Partial<Record<string, string | undefined>>;

/**
 * The NATS client config from flags (as commander or parseArgs give them), then the environment. `url` is
 * absent when neither --nats-url nor NATS_URL is set; startWaitMs falls back to `defaultStartWaitMs`.
 */
export function resolveNatsFlags(
  raw: RawNatsFlags,
  env: NodeJS.ProcessEnv = process.env,
  defaultStartWaitMs = 0,
): { url?: string; auth: NatsAuth; startWaitMs: number } {
  const url = resolveSetting({ flag: '--nats-url', env: 'NATS_URL', parse: parseNatsUrl }, raw.natsUrl, env);
  const auth: NatsAuth = {};
  for (const k of authKeys) {
    const f = natsAuthFields[k];
    const v = resolveSetting(
      { flag: f.flag, env: f.env, parse: (s) => s.trim() },
      raw[camel(f.flag.slice(2))],
      env,
    );
    // Files are made absolute, so a worker started in another directory finds them too.
    if (v !== undefined && v !== '') auth[k] = k === 'user' || isAbsolute(v) ? v : resolve(v);
  }
  const wait = resolveSetting(
    { flag: `--${natsStartWaitFlag.name}`, env: natsStartWaitFlag.env, parse: parseStartWait },
    raw.natsStartWait,
    env,
  );
  return { ...(url !== undefined ? { url } : {}), auth, startWaitMs: wait ?? defaultStartWaitMs };
}
