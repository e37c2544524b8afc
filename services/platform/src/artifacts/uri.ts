/**
 * Artifact URIs: `nats-obj://<bucket>/<key>` (JetStream Object Store, the default), `s3://<bucket>/<key>`
 * (an S3-protocol object store, s3-store.ts), `file:///abs/path` (a shared volume) and, for reading a model
 * only, `hf://<org>/<name>[@<revision>]` (a Hugging Face Hub model, hf-source.ts). Keys are deterministic
 * paths such as `runs/<ns>/<run>/iter-<k>/<stage>/shard-<i>.jsonl`.
 */
import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArgument } from '../errors.js';
import { isHfUri, parseHfUri } from './hf-source.js';

export type ArtifactLocation =
  | { scheme: 'nats-obj'; bucket: string; key: string }
  | { scheme: 's3'; bucket: string; key: string }
  | { scheme: 'file'; path: string }
  | { scheme: 'hf'; repo: string; revision: string };

const bucketPattern = /^[a-zA-Z0-9_-]+$/;
/** S3's bucket naming rules (lower case, digits, `.` and `-`, 3 to 63 characters). */
const s3BucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const fix =
  'use nats-obj://<bucket>/<key>, s3://<bucket>/<key>, file:///absolute/path or (to read a model) hf://<org>/<name>[@<revision>]';

/** Splits `<bucket>/<key>` after a scheme and checks the key: relative, no `..`, not empty. */
function bucketAndKey(
  uri: string,
  rest: string,
  field: string,
  pattern: RegExp,
): { bucket: string; key: string } {
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (!pattern.test(bucket)) throw invalidArgument(field, `bad bucket "${bucket}" in ${uri}`, fix);
  if (key === '' || key.startsWith('/') || key.split('/').includes('..')) {
    throw invalidArgument(field, `bad key "${key}" in ${uri}`, fix);
  }
  return { bucket, key };
}

export function parseArtifactUri(uri: string, field = 'uri'): ArtifactLocation {
  if (uri.startsWith('nats-obj://')) {
    return {
      scheme: 'nats-obj',
      ...bucketAndKey(uri, uri.slice('nats-obj://'.length), field, bucketPattern),
    };
  }
  if (uri.startsWith('s3://')) {
    return { scheme: 's3', ...bucketAndKey(uri, uri.slice('s3://'.length), field, s3BucketPattern) };
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
  if (isHfUri(uri)) return { scheme: 'hf', ...parseHfUri(uri, field) };
  if (isAbsolute(uri)) return { scheme: 'file', path: normalize(uri) };
  throw invalidArgument(field, `unsupported artifact URI "${uri}"`, fix);
}

export function formatArtifactUri(location: ArtifactLocation): string {
  if (location.scheme === 'file') return `file://${location.path}`;
  if (location.scheme === 'hf')
    return `hf://${location.repo}${location.revision === 'main' ? '' : `@${location.revision}`}`;
  return `${location.scheme}://${location.bucket}/${location.key}`;
}

/**
 * `uri` parsed as somewhere to write: hf:// is refused (the Hub is a source only; the platform never
 * uploads to it), naming `field`.
 */
export function parseWritableUri(uri: string, field: string): ArtifactLocation {
  const loc = parseArtifactUri(uri, field);
  if (loc.scheme === 'hf')
    throw invalidArgument(
      field,
      `${uri} is a Hugging Face model, which is read-only here`,
      'write to a nats-obj://, s3:// or file:// URI; publish to the Hub with its own tools',
    );
  return loc;
}

/** Joins a key below a prefix URI: `joinArtifactUri('nats-obj://b/runs/x', 'iter-1/a')`. */
export function joinArtifactUri(base: string, ...parts: string[]): string {
  const trimmed = base.replace(/\/+$/, '');
  return [trimmed, ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))].join('/');
}
