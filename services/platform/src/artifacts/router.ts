/**
 * One ArtifactStore that routes each URI to the store for its scheme, through the process's ArtifactSandbox:
 * every file:// access is resolved by the sandbox first. Under a confined sandbox (a service) a data file is
 * only written into a directory the platform made (created and marked here when new), and only what the
 * platform made is replaced or deleted.
 */
import { dirname } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { invalidArgument, RlhfError } from '../errors.js';
import { FileArtifactStore, writeFileAtomic } from './file-store.js';
import { copyFileAtomic } from './file-stream.js';
import { NatsObjectArtifactStore } from './object-store.js';
import { prepareDataDir } from './platform-made.js';
import { S3ArtifactStore } from './s3-store.js';
import type { AccessMode, ArtifactSandbox } from './sandbox.js';
import { type ArtifactInfo, type ArtifactStore, sha256Digest } from './store.js';
import { type ArtifactLocation, formatArtifactUri } from './uri.js';

export class ArtifactRouter implements ArtifactStore {
  private readonly file = new FileArtifactStore();
  private readonly objects: ArtifactStore | null;
  private s3: ArtifactStore | undefined;

  /**
   * `sandbox`: what URIs this process may touch (ArtifactSandbox.unrestricted() for the user's own).
   * `objects`: where nats-obj:// URIs go instead of the Object Store over `nc` (a run without NATS).
   * `s3`: where s3:// URIs go; by default an S3 client configured from the environment (s3ConfigFromEnv),
   * made on the first s3:// URI the sandbox lets through.
   */
  constructor(
    nc: NatsConnection | null,
    readonly sandbox: ArtifactSandbox,
    objects?: ArtifactStore,
    s3?: ArtifactStore,
  ) {
    this.objects = objects ?? (nc ? new NatsObjectArtifactStore(nc) : null);
    this.s3 = s3;
  }

  private get confined(): boolean {
    return this.sandbox.confinedRoots !== null;
  }

  async resolve(uri: string, field: string, mode: AccessMode): Promise<ArtifactLocation> {
    const loc = await this.sandbox.resolve(uri, field, mode);
    if (loc.scheme === 'nats-obj' && !this.objects)
      throw new RlhfError('FAILED_PRECONDITION', `${uri} needs a NATS connection`, {
        field,
        fix: 'pass --nats-url (or set NATS_URL), or use a file:// URI',
      });
    return loc;
  }

  /**
   * The store for `uri` and the URI to hand it (a file:// URI as the sandbox resolved it). An hf:// URI
   * names a whole model, loaded through acquireModelDir (@rlhf/service-kit), never one object of a store.
   */
  private async route(uri: string, mode: AccessMode): Promise<[ArtifactStore, string, ArtifactLocation]> {
    const loc = await this.resolve(uri, 'uri', mode);
    if (loc.scheme === 'file') return [this.file, formatArtifactUri(loc), loc];
    if (loc.scheme === 'hf')
      throw invalidArgument(
        'uri',
        `${uri} is a Hugging Face model; it is read as a model directory, not as a data file`,
        'name it only where a model is read (spec.policy.model, spec.judge.model, a ModelRef); put datasets in place with `rlhf data push`',
      );
    if (loc.scheme === 's3') {
      this.s3 ??= new S3ArtifactStore();
      return [this.s3, uri, loc];
    }
    return [this.objects as ArtifactStore, uri, loc];
  }

  /** Under a confined sandbox, a data file goes only into a directory the platform made (made here). */
  private async confinedDataDir(uri: string, loc: ArtifactLocation): Promise<string | null> {
    if (loc.scheme !== 'file' || !this.confined) return null;
    // Checked by the sandbox a moment ago; made (and marked) here when new, checked again when not.
    if (!(await prepareDataDir(dirname(loc.path))))
      throw new RlhfError('PERMISSION_DENIED', `${uri} is inside a directory the platform did not make`, {
        field: 'uri',
        fix: 'write data files under a new directory; the platform writes only into directories it made',
      });
    return loc.path;
  }

  async put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    const [store, target, loc] = await this.route(uri, 'write-file');
    const path = await this.confinedDataDir(uri, loc);
    if (path === null) return store.put(target, data);
    await writeFileAtomic(path, data);
    return { uri, size: data.byteLength, digest: sha256Digest(data) };
  }
  /** `path` is a local file of the caller's own (not a URI the sandbox judges). */
  async putFile(uri: string, path: string): Promise<ArtifactInfo> {
    const [store, target, loc] = await this.route(uri, 'write-file');
    const confined = await this.confinedDataDir(uri, loc);
    if (confined === null) return { ...(await store.putFile(target, path)), uri };
    return { uri, ...(await copyFileAtomic(path, confined)) };
  }
  async get(uri: string): Promise<Uint8Array> {
    const [store, target] = await this.route(uri, 'read');
    return store.get(target);
  }
  /** `path` is a local file of the caller's own (not a URI the sandbox judges). */
  async getFile(uri: string, path: string): Promise<ArtifactInfo> {
    const [store, target] = await this.route(uri, 'read');
    return { ...(await store.getFile(target, path)), uri };
  }
  async info(uri: string): Promise<ArtifactInfo | null> {
    const [store, target] = await this.route(uri, 'read');
    const info = await store.info(target);
    return info && { ...info, uri };
  }
  async delete(uri: string): Promise<void> {
    // A write: under a confined sandbox only what the platform made (or nothing) may stand there.
    const [store, target] = await this.route(uri, 'write');
    return store.delete(target);
  }
  /** Releases the S3 client's connections, when one was made (the NATS connection is the caller's). */
  close(): void {
    if (this.s3 instanceof S3ArtifactStore) this.s3.close();
  }

  async list(prefixUri: string): Promise<string[]> {
    const [store, target, loc] = await this.route(prefixUri, 'read');
    const found = await store.list(target);
    // Hand back URIs in the form the caller used for the prefix.
    if (loc.scheme !== 'file' || target === prefixUri) return found;
    return found.map((u) => `${prefixUri}${u.slice(target.length)}`);
  }
}
