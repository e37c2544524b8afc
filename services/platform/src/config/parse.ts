/**
 * Parsers for configuration values that come from flags or the environment. Each takes the raw string and
 * the name the user typed (`--port`, `NATS_URL`) so that a bad value is reported against that name with the
 * form it should take, never as a stack trace.
 */
import { invalidArgument } from '../errors.js';
import { redact } from '../observability/redact.js';

export function parseIntegerIn(raw: string, field: string, min: number, max: number): number {
  const trimmed = raw.trim();
  if (!/^-?\d+$/.test(trimmed)) {
    throw invalidArgument(
      field,
      `expected an integer, got "${raw}"`,
      `pass an integer between ${min} and ${max}`,
    );
  }
  const value = Number(trimmed);
  if (value < min || value > max) {
    throw invalidArgument(field, `${value} is out of range`, `pass an integer between ${min} and ${max}`);
  }
  return value;
}

export function parseNumberIn(raw: string, field: string, min: number, max: number): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value)) {
    throw invalidArgument(
      field,
      `expected a number, got "${raw}"`,
      `pass a number between ${min} and ${max}`,
    );
  }
  if (value < min || value > max) {
    throw invalidArgument(field, `${value} is out of range`, `pass a number between ${min} and ${max}`);
  }
  return value;
}

/** A TCP port; 0 asks the OS for a free one. */
export function parsePort(raw: string, field = '--port'): number {
  return parseIntegerIn(raw, field, 0, 65535);
}

/** A host name or IP address to bind or dial. */
export function parseHost(raw: string, field = '--host'): string {
  const host = raw.trim();
  if (host === '' || /[\s/]/.test(host)) {
    throw invalidArgument(
      field,
      `"${raw}" is not a host name or IP address`,
      'pass e.g. 127.0.0.1 or 0.0.0.0',
    );
  }
  return host;
}

const natsSchemes = new Set(['nats:', 'tls:', 'ws:', 'wss:']);

/**
 * A NATS server URL, or a comma-separated list of them. A bare `host:port` is accepted as `nats://host:port`,
 * the way the nats CLI reads it.
 */
export function parseNatsUrl(raw: string, field = '--nats-url'): string {
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) {
    throw invalidArgument(field, 'is empty', 'pass a URL such as nats://127.0.0.1:4222');
  }
  const normalised = parts.map((raw) => {
    // Messages show the URL without its password or token.
    const part = redact(raw);
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `nats://${raw}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw invalidArgument(field, `"${part}" is not a URL`, 'pass a URL such as nats://127.0.0.1:4222');
    }
    if (!natsSchemes.has(url.protocol)) {
      throw invalidArgument(
        field,
        `unknown scheme "${url.protocol.replace(/:$/, '')}" in "${part}"`,
        'use nats://, tls://, ws:// or wss://, e.g. nats://127.0.0.1:4222',
      );
    }
    if (url.hostname === '') {
      throw invalidArgument(field, `"${part}" has no host`, 'pass a URL such as nats://127.0.0.1:4222');
    }
    return withScheme;
  });
  return normalised.join(',');
}

const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof levels)[number];

export function parseLogLevel(raw: string, field = '--log-level'): LogLevel {
  const value = raw.trim().toLowerCase();
  if (!(levels as readonly string[]).includes(value)) {
    throw invalidArgument(field, `unknown level "${raw}"`, `use one of ${levels.join(', ')}`);
  }
  return value as LogLevel;
}

/** A duration such as `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds. Returns milliseconds. */
export function parseDuration(raw: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) throw invalidArgument(field, `"${raw}" is not a duration`, 'pass e.g. 500ms, 30s, 5m or 1h');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const scale = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return n * scale;
}
