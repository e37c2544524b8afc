/** FakeApiServer: the fake Kubernetes API over real HTTP on a loopback port, plus test controls. */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { InProcessClient } from './in-process-client.js';
import { crdName, type JsonObject, ResourceRegistry, typesFromCrd } from './resources.js';
import { handle, type PodLogSource, type RequestRecord, type Verb } from './routes.js';
import { type MutationRecord, Store } from './storage.js';
import { WatchHub } from './watch.js';

export interface FakeApiServerOptions {
  /** Port to listen on (loopback); 0 (default) picks a free one. */
  port?: number;
  /** How many revisions of history watches can resume from; older ones answer 410 Gone. Default 1000. */
  historyLimit?: number;
  /** Period of BOOKMARK events on watches that allow them; 0 (default) sends them only on sendBookmarks(). */
  bookmarkIntervalMs?: number;
  /** CRD objects to register before serving. */
  crds?: JsonObject[];
  /** Keep every HTTP request in `requestLog` (verb, group, resource, namespace), e.g. to check RBAC. */
  recordRequests?: boolean;
}

export class FakeApiServer {
  readonly registry = new ResourceRegistry();
  readonly store: Store;
  /** In-process access (not counted as requests), with field manager `test`. */
  readonly client: InProcessClient;
  private readonly watches: WatchHub;
  private readonly counts = new Map<string, number>();
  /** Every HTTP request in order, when started with `recordRequests`. */
  readonly requestLog: RequestRecord[] = [];
  private readonly http: Server;
  private podLogSource: PodLogSource | undefined;
  url = '';

  private constructor(opts: FakeApiServerOptions) {
    this.store = new Store(this.registry, opts.historyLimit ?? 1000);
    this.client = new InProcessClient(this.store, this.registry, 'test');
    this.watches = new WatchHub(this.store, opts.bookmarkIntervalMs ?? 0);
    for (const crd of opts.crds ?? []) this.registerCrd(crd);
    this.http = createServer((req, res) => {
      void handle(
        {
          registry: this.registry,
          store: this.store,
          watches: this.watches,
          count: (verb: Verb, resource: string, request: RequestRecord) => {
            const key = `${verb} ${resource}`;
            this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
            if (opts.recordRequests) this.requestLog.push(request);
          },
          podLogs: () => this.podLogSource,
        },
        req,
        res,
      );
    });
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const server = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const { port } = server.http.address() as AddressInfo;
    server.url = `http://127.0.0.1:${port}`;
    return server;
  }

  async stop(): Promise<void> {
    this.watches.dropAll(true);
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  /** Registers (or updates) a CustomResourceDefinition, as `kubectl apply -f crd.yaml` would. */
  registerCrd(crd: JsonObject): void {
    typesFromCrd(crd);
    const crdType = this.registry.byName('customresourcedefinitions.apiextensions.k8s.io')!;
    const name = crdName(crd);
    const existing = this.store.find(crdType, '', name);
    const body = { ...structuredClone(crd), metadata: { ...((crd.metadata as JsonObject) ?? {}), name } };
    const ctx = { manager: 'kubectl', verb: existing ? 'update' : 'create' };
    if (existing) {
      (body.metadata as JsonObject).resourceVersion = (existing.metadata as JsonObject).resourceVersion;
      this.store.update(crdType, '', name, body, ctx);
    } else this.store.create(crdType, '', body, ctx);
  }

  /** Registers every CRD in a (multi-document) YAML file. */
  loadCrdFile(path: string): void {
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
      const obj = doc.toJS() as JsonObject | null;
      if (obj?.kind === 'CustomResourceDefinition') this.registerCrd(obj);
    }
  }

  /** Ends every open watch. Graceful: the stream ends and clients re-watch; abrupt: sockets are reset. */
  dropWatches(opts: { abrupt?: boolean } = {}): void {
    this.watches.dropAll(opts.abrupt === true);
  }

  get openWatches(): number {
    return this.watches.count;
  }

  /** Compacts history at the current revision: older resourceVersions now answer 410 Gone. */
  compact(): void {
    this.store.compact();
  }

  /** Sends a BOOKMARK (current resourceVersion) on every watch that asked for bookmarks. */
  sendBookmarks(): void {
    this.watches.bookmarkAll();
  }

  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  /** Every committed mutation, in order (including the garbage collector's and in-process writes). */
  get events(): readonly MutationRecord[] {
    return this.store.mutations;
  }

  /** HTTP requests per `<verb> <resource>[/<subresource>]`, e.g. `patch rlhfruns.rlhf.dev/status`. */
  requestCounts(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Total HTTP requests, optionally only those whose `<verb> <resource>` key passes `filter`. */
  totalRequests(filter: (key: string) => boolean = () => true): number {
    let n = 0;
    for (const [k, v] of this.counts) if (filter(k)) n += v;
    return n;
  }

  resetRequestCounts(): void {
    this.counts.clear();
  }

  /** Where GET pods/<name>/log reads from (the fake kubelet installs itself here). */
  setPodLogSource(source: PodLogSource | undefined): void {
    this.podLogSource = source;
  }
}
