/**
 * Where artifacts live, behind one interface. A write is never visible half-done: the file store writes a
 * temporary sibling and renames it; the Object Store publishes an object's metadata only after its chunks.
 */
import { createHash } from 'node:crypto';
import { RlhfError } from '../errors.js';
import type { AccessMode } from './sandbox.js';
import type { ArtifactLocation } from './uri.js';

export interface ArtifactInfo {
  uri: string;
  size: number;
  /** `SHA-256=<base64url>` (the Object Store's own digest form). */
  digest: string;
}

export interface ArtifactStore {
  put(uri: string, data: Uint8Array): Promise<ArtifactInfo>;
  /**
   * Stores the local file at `path` as `uri` by stream (a file of any size; the 2 GiB of one Node buffer
   * does not apply), digested as it is read. Visible to readers only when whole, as with put.
   */
  putFile(uri: string, path: string): Promise<ArtifactInfo>;
  /**
   * Writes the artifact into the local file `path` by stream: a temporary sibling renamed into place only
   * after the whole artifact arrived and passed its digest check where the store keeps one, so a failed or
   * damaged transfer leaves nothing at `path`. NOT_FOUND when absent.
   */
  getFile(uri: string, path: string): Promise<ArtifactInfo>;
  /** Reads the whole artifact; checks its digest where the store keeps one. NOT_FOUND when absent. */
  get(uri: string): Promise<Uint8Array>;
  info(uri: string): Promise<ArtifactInfo | null>;
  delete(uri: string): Promise<void>;
  /** URIs of every artifact whose key starts with the given prefix URI. */
  list(prefixUri: string): Promise<string[]>;
  /**
   * Where `uri` (from the request's `field`) points, checked against what this store may touch (its
   * ArtifactSandbox): for code that reads or writes a file:// location itself (model directories).
   */
  resolve(uri: string, field: string, mode: AccessMode): Promise<ArtifactLocation>;
}

export function sha256Digest(data: Uint8Array): string {
  return `SHA-256=${createHash('sha256').update(data).digest('base64url')}`;
}

/** Digests compare by their bytes: `SHA-256=` + base64, padded or not, url-safe or not. */
export function sameDigest(a: string, b: string): boolean {
  const bytes = (d: string): string =>
    Buffer.from(
      d
        .replace(/^sha-256=/i, '')
        .replace(/-/g, '+')
        .replace(/_/g, '/'),
      'base64',
    ).toString('hex');
  return bytes(a) === bytes(b);
}

/** INTERNAL naming the URI: the bytes read do not match the digest the store recorded for them. */
export function damaged(uri: string, got: string, stored: string): RlhfError {
  return new RlhfError('INTERNAL', `artifact ${uri} failed its digest check (${got} != ${stored})`, {
    field: 'uri',
    fix: 'write the artifact again; the stored copy is damaged',
  });
}

export function notFound(uri: string): RlhfError {
  return new RlhfError('NOT_FOUND', `artifact ${uri} does not exist`, {
    field: 'uri',
    fix: 'check the URI, or run the stage that writes it first',
  });
}
