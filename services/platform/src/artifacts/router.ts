/** One ArtifactStore that routes each URI to the store for its scheme. */
import type { NatsConnection } from '@nats-io/transport-node';
import { RlhfError } from '../errors.js';
import { FileArtifactStore } from './file-store.js';
import { NatsObjectArtifactStore } from './object-store.js';
import type { ArtifactInfo, ArtifactStore } from './store.js';
import { parseArtifactUri } from './uri.js';

export class ArtifactRouter implements ArtifactStore {
  private readonly file = new FileArtifactStore();
  private readonly objects: NatsObjectArtifactStore | null;

  constructor(nc: NatsConnection | null) {
    this.objects = nc ? new NatsObjectArtifactStore(nc) : null;
  }

  private storeFor(uri: string): ArtifactStore {
    const loc = parseArtifactUri(uri);
    if (loc.scheme === 'file') return this.file;
    if (!this.objects) {
      throw new RlhfError('FAILED_PRECONDITION', `${uri} needs a NATS connection`, {
        field: 'uri',
        fix: 'pass --nats-url (or set NATS_URL), or use a file:// URI',
      });
    }
    return this.objects;
  }

  put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    return this.storeFor(uri).put(uri, data);
  }
  get(uri: string): Promise<Uint8Array> {
    return this.storeFor(uri).get(uri);
  }
  info(uri: string): Promise<ArtifactInfo | null> {
    return this.storeFor(uri).info(uri);
  }
  delete(uri: string): Promise<void> {
    return this.storeFor(uri).delete(uri);
  }
  list(prefixUri: string): Promise<string[]> {
    return this.storeFor(prefixUri).list(prefixUri);
  }
}
