/** `nats-obj://` artifacts in JetStream Object Store buckets, created on first use. */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { openObjectStore } from '../nats/jetstream.js';
import { streamToFileAtomic } from './file-stream.js';
import { objectChunks } from './object-chunks.js';
import type { AccessMode } from './sandbox.js';
import {
  type ArtifactInfo,
  type ArtifactStore,
  damaged,
  notFound,
  sameDigest,
  sha256Digest,
} from './store.js';
import { type ArtifactLocation, formatArtifactUri, parseArtifactUri } from './uri.js';

function location(uri: string): { bucket: string; key: string } {
  const loc = parseArtifactUri(uri);
  if (loc.scheme !== 'nats-obj') throw new Error(`object store given ${uri}`);
  return loc;
}

export class NatsObjectArtifactStore implements ArtifactStore {
  private readonly buckets = new Map<string, Promise<ObjectStore>>();

  constructor(private readonly nc: NatsConnection) {}

  async resolve(uri: string, field: string, _mode: AccessMode): Promise<ArtifactLocation> {
    const loc = parseArtifactUri(uri, field);
    if (loc.scheme !== 'nats-obj') throw new Error(`object store given ${uri}`);
    return loc;
  }

  private bucket(name: string): Promise<ObjectStore> {
    let os = this.buckets.get(name);
    if (!os) {
      os = openObjectStore(this.nc, name);
      this.buckets.set(name, os);
    }
    return os;
  }

  async put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    const info = await (await this.bucket(bucket)).putBlob({ name: key }, data);
    return { uri, size: info.size, digest: info.digest };
  }

  async putFile(uri: string, path: string): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    const os = await this.bucket(bucket);
    // The client reads the stream chunk by chunk (128 KiB objects) and digests it as it goes.
    const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    const info = await os.put({ name: key }, body);
    return { uri, size: info.size, digest: info.digest };
  }

  async getFile(uri: string, path: string): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    const os = await this.bucket(bucket);
    const meta = await os.info(key);
    if (meta === null || meta.deleted) throw notFound(uri);
    // A link (which the platform never writes) is followed by the client's own reader.
    const linked = meta.options?.link ? await os.get(key) : null;
    const chunks = linked ? linked.data : objectChunks(this.nc, bucket, meta);
    // Checked before the file is renamed into place: a truncated or damaged transfer leaves nothing.
    const expected = linked?.info ?? meta;
    await streamToFileAtomic(path, chunks, async ({ size, digest }) => {
      const failed = await linked?.error;
      if (failed) throw failed;
      if (size !== expected.size || !sameDigest(digest, expected.digest))
        throw damaged(uri, digest, expected.digest);
    });
    // The digest in the store's own form, as put and info give it.
    return { uri, size: expected.size, digest: expected.digest };
  }

  async get(uri: string): Promise<Uint8Array> {
    const { bucket, key } = location(uri);
    const os = await this.bucket(bucket);
    const meta = await os.info(key);
    if (meta === null || meta.deleted) throw notFound(uri);
    const data = await os.getBlob(key);
    if (data === null) throw notFound(uri);
    // The client checks the digest while streaming; check again on the assembled bytes, since a truncated
    // transfer is the one failure we must never hand on as a good artifact.
    const digest = sha256Digest(data);
    if (!sameDigest(digest, meta.digest)) throw damaged(uri, digest, meta.digest);
    return data;
  }

  async info(uri: string): Promise<ArtifactInfo | null> {
    const { bucket, key } = location(uri);
    const meta = await (await this.bucket(bucket)).info(key);
    if (meta === null || meta.deleted) return null;
    return { uri, size: meta.size, digest: meta.digest };
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = location(uri);
    const os = await this.bucket(bucket);
    if ((await os.info(key)) !== null) await os.delete(key);
  }

  async list(prefixUri: string): Promise<string[]> {
    const { bucket, key } = location(prefixUri);
    const entries = await (await this.bucket(bucket)).list();
    return entries
      .filter((e) => !e.deleted && e.name.startsWith(key))
      .map((e) => formatArtifactUri({ scheme: 'nats-obj', bucket, key: e.name }))
      .sort();
  }
}
