/**
 * Watch streams: newline-delimited JSON events over a chunked HTTP response, as the real apiserver sends.
 * A watch from a resourceVersion replays the history after it (or answers one ERROR event with a 410
 * Status and closes, when that history was compacted); without one, it starts with synthetic ADDED
 * events for the current objects. Selector-filtered watches see objects entering (ADDED) and leaving
 * (DELETED) their selection.
 */
import type { ServerResponse } from 'node:http';
import { apiVersionOf, type JsonObject, type ResourceType, resourceKey } from './resources.js';
import type { Matcher } from './selectors.js';
import { errors } from './status.js';
import { type Change, metaOf, type Store } from './storage.js';

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  resourceVersion: string | undefined;
  labelSelector: Matcher;
  fieldSelector: Matcher;
  timeoutSeconds: number | undefined;
  allowWatchBookmarks: boolean;
}

interface OpenWatch {
  res: ServerResponse;
  close: (abrupt: boolean) => void;
  bookmark: () => void;
}

export class WatchHub {
  private readonly open = new Set<OpenWatch>();

  constructor(
    private readonly store: Store,
    private readonly bookmarkIntervalMs: number,
  ) {}

  get count(): number {
    return this.open.size;
  }

  /** Ends every watch: gracefully (the client sees the stream end and re-watches) or by resetting sockets. */
  dropAll(abrupt = false): void {
    for (const w of [...this.open]) w.close(abrupt);
  }

  /** Sends a BOOKMARK to every watch that allowed them. */
  bookmarkAll(): void {
    for (const w of this.open) w.bookmark();
  }

  serve(req: WatchRequest, res: ServerResponse): void {
    const { type } = req;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const send = (eventType: string, object: JsonObject) => {
      res.write(`${JSON.stringify({ type: eventType, object })}\n`);
    };
    const present = (obj: JsonObject): JsonObject => ({
      ...structuredClone(obj),
      apiVersion: apiVersionOf(type),
      kind: type.kind,
    });
    const inScope = (obj: JsonObject | undefined): obj is JsonObject => {
      if (!obj) return false;
      if (req.namespace !== undefined && type.namespaced && metaOf(obj).namespace !== req.namespace)
        return false;
      return req.labelSelector(obj) && req.fieldSelector(present(obj));
    };
    const deliver = (c: Change) => {
      if (c.resource !== resourceKey(type)) return;
      const now = c.type !== 'DELETED' && inScope(c.object);
      const before = inScope(c.prev);
      if (c.type === 'DELETED') {
        if (before || inScope(c.object)) send('DELETED', present(c.object));
      } else if (now && !before) send('ADDED', present(c.object));
      else if (now && before) send('MODIFIED', present(c.object));
      else if (!now && before) send('DELETED', present(c.object));
    };

    const rv = req.resourceVersion;
    if (rv && rv !== '0') {
      const changes = this.store.changesAfter(Number(rv));
      if (!changes) {
        send('ERROR', {
          ...errors.expired(`too old resource version: ${rv} (${this.store.compactedRevision + 1})`).status,
        });
        res.end();
        return;
      }
      for (const c of changes) deliver(c);
    } else {
      for (const obj of this.store.list(type, req.namespace).items) {
        const full = present(obj);
        if (inScope(full)) send('ADDED', full);
      }
    }
    const unsubscribe = this.store.subscribe(deliver);

    // Every change up to the store's revision has been delivered (writes are synchronous), so that is
    // the revision a bookmark can promise.
    const bookmark = () => {
      if (!req.allowWatchBookmarks) return;
      const resourceVersion = String(this.store.resourceVersion);
      send('BOOKMARK', { kind: type.kind, apiVersion: apiVersionOf(type), metadata: { resourceVersion } });
    };
    const timers: NodeJS.Timeout[] = [];
    if (req.allowWatchBookmarks && this.bookmarkIntervalMs > 0)
      timers.push(setInterval(bookmark, this.bookmarkIntervalMs));
    const entry: OpenWatch = {
      res,
      bookmark,
      close: (abrupt) => {
        cleanup();
        if (abrupt) res.socket?.destroy();
        else res.end();
      },
    };
    const cleanup = () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.open.delete(entry);
    };
    if (req.timeoutSeconds !== undefined)
      timers.push(setTimeout(() => entry.close(false), req.timeoutSeconds * 1000));
    this.open.add(entry);
    res.on('close', cleanup);
  }
}
