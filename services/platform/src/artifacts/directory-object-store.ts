/**
 * Object Store keys kept as files: `nats-obj://<bucket>/<key>` is `<root>/<bucket>/<key>`. A run in one
 * process (no NATS) hands this to ArtifactRouter for its nats-obj:// URIs, so its stages and the services'
 * shard handlers read and write the same keys as over NATS (models with their manifest, deterministic shard
 * outputs) and a run that stops keeps them under its output directory to resume from.
 */
import { join } from 'node:path';
import { FileArtifactStore } from './file-store.js';
import type { AccessMode } from './sandbox.js';
import { type ArtifactInfo, type ArtifactStore, notFound } from './store.js';
import { type ArtifactLocation, formatArtifactUri, parseArtifactUri } from './uri.js';

export class DirectoryObjectStore implements ArtifactStore {
  private readonly files = new FileArtifactStore();

  constructor(readonly root: string) {}

  private fileUri(uri: string, field = 'uri'): string {
    const loc = parseArtifactUri(uri, field);
    if (loc.scheme !== 'nats-obj') throw new Error(`directory object store given ${uri}`);
    return formatArtifactUri({ scheme: 'file', path: join(this.root, loc.bucket, loc.key) });
  }

  async resolve(uri: string, field: string, _mode: AccessMode): Promise<ArtifactLocation> {
    return parseArtifactUri(uri, field);
  }

  async put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    const info = await this.files.put(this.fileUri(uri), data);
    return { ...info, uri };
  }

  async putFile(uri: string, path: string): Promise<ArtifactInfo> {
    const info = await this.files.putFile(this.fileUri(uri), path);
    return { ...info, uri };
  }

  async get(uri: string): Promise<Uint8Array> {
    try {
      return await this.files.get(this.fileUri(uri));
    } catch (err) {
      // The NOT_FOUND names the URI asked for, not the file behind it.
      if ((err as { code?: string }).code === 'NOT_FOUND') throw notFound(uri);
      throw err;
    }
  }

  async getFile(uri: string, path: string): Promise<ArtifactInfo> {
    try {
      return { ...(await this.files.getFile(this.fileUri(uri), path)), uri };
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_FOUND') throw notFound(uri);
      throw err;
    }
  }

  async info(uri: string): Promise<ArtifactInfo | null> {
    const info = await this.files.info(this.fileUri(uri));
    return info && { ...info, uri };
  }

  async delete(uri: string): Promise<void> {
    await this.files.delete(this.fileUri(uri));
  }

  /** Keys that start with the prefix's key, as the Object Store matches them (not only a directory's). */
  async list(prefixUri: string): Promise<string[]> {
    const loc = parseArtifactUri(prefixUri);
    if (loc.scheme !== 'nats-obj') throw new Error(`directory object store given ${prefixUri}`);
    const base = join(this.root, loc.bucket);
    // The directory holding every key with this prefix: the one the prefix's last `/` ends.
    const cut = loc.key.lastIndexOf('/');
    const parent = cut < 0 ? base : join(base, loc.key.slice(0, cut));
    const found = await this.files.list(formatArtifactUri({ scheme: 'file', path: `${parent}/` }));
    return found
      .map((u) => parseArtifactUri(u))
      .flatMap((l) =>
        l.scheme === 'file' && l.path.startsWith(`${base}/`) ? [l.path.slice(base.length + 1)] : [],
      )
      .filter((key) => key.startsWith(loc.key))
      .map((key) => formatArtifactUri({ scheme: 'nats-obj', bucket: loc.bucket, key }))
      .sort();
  }
}
