/**
 * Artifact URIs: `nats-obj://<bucket>/<key>` (JetStream Object Store, the default) and `file:///abs/path`
 * (a shared volume). Keys are deterministic paths such as `runs/<ns>/<run>/iter-<k>/<stage>/shard-<i>.jsonl`.
 */
import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArgument } from '../errors.js';

export type ArtifactLocation =
  | { scheme: 'nats-obj'; bucket: string; key: string }
  | { scheme: 'file'; path: string };

const bucketPattern = /^[a-zA-Z0-9_-]+$/;
const fix = 'use nats-obj://<bucket>/<key> or file:///absolute/path';

export function parseArtifactUri(uri: string, field = 'uri'): ArtifactLocation {
  if (uri.startsWith('nats-obj://')) {
    const rest = uri.slice('nats-obj://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (!bucketPattern.test(bucket)) throw invalidArgument(field, `bad bucket "${bucket}" in ${uri}`, fix);
    if (key === '' || key.startsWith('/') || key.split('/').includes('..')) {
      throw invalidArgument(field, `bad key "${key}" in ${uri}`, fix);
    }
    return { scheme: 'nats-obj', bucket, key };
  }
  if (uri.startsWith('file://')) {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch {
      throw invalidArgument(field, `${uri} is not a file URL`, fix);
    }
    return { scheme: 'file', path: normalize(path) };
  }
  if (isAbsolute(uri)) return { scheme: 'file', path: normalize(uri) };
  throw invalidArgument(field, `unsupported artifact URI "${uri}"`, fix);
}

export function formatArtifactUri(location: ArtifactLocation): string {
  return location.scheme === 'file'
    ? `file://${location.path}`
    : `nats-obj://${location.bucket}/${location.key}`;
}

/** Joins a key below a prefix URI: `joinArtifactUri('nats-obj://b/runs/x', 'iter-1/a')`. */
export function joinArtifactUri(base: string, ...parts: string[]): string {
  const trimmed = base.replace(/\/+$/, '');
  return [trimmed, ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))].join('/');
}
