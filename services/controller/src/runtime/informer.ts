/**
 * A supervised informer: client-node 1.4's ListWatch (what `makeInformer` builds) plus what it lacks
 * for a controller. client-node re-watches when a watch ends cleanly and relists after a 410, but on a
 * network error it only calls its 'error' handlers and stops; here every such error restarts it with
 * exponential backoff. Also: a resolved promise means the cache holds the first list, periodic resync
 * events, a watch timeout so a silently dead connection is noticed, and no watch left open after stop().
 */
import {
  ADD,
  DELETE,
  ERROR,
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
  ListWatch,
  UPDATE,
  Watch,
} from '@kubernetes/client-node';
import { invalidArgument } from '@rlhf/platform';
import { type RuntimeLogger, silentLogger } from './logger.js';

export type InformerEventType = 'add' | 'update' | 'delete' | 'resync';

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Collection path to watch, e.g. `/apis/rlhf.dev/v1alpha1/namespaces/ns/rlhfruns` (no query). */
  path: string;
  /** Lists the same collection; it must apply the same labelSelector (client-node passes it to the watch only). */
  list: ListPromise<T>;
  labelSelector?: string;
  /** Period of 'resync' events for every cached object; 0 or absent: none. */
  resyncMs?: number;
  /** First restart delay after a watch error; doubles per consecutive failure. Default 200 ms. */
  minBackoffMs?: number;
  /** Ceiling of the restart delay. Default 30 000 ms. */
  maxBackoffMs?: number;
  /**
   * Watches ask the server to end them after this long (client-node then re-watches from its
   * resourceVersion), so a half-open connection cannot hide changes forever. Default: 300-600 s, jittered.
   */
  watchTimeoutSeconds?: number;
  logger?: RuntimeLogger;
  /** Aborting before the first list has been delivered stops the informer and rejects the promise. */
  signal?: AbortSignal;
  /** Called synchronously from the cache; it should only enqueue work. A throw is logged, not propagated. */
  onEvent: (type: InformerEventType, obj: T) => void;
}

export interface SupervisedInformer<T extends KubernetesObject> {
  /** Every cached object. */
  list(): T[];
  /** A cached object; namespace '' for cluster-scoped ones. */
  get(namespace: string, name: string): T | undefined;
  /** Whether the first list has been delivered to the cache (stays true across restarts). */
  synced(): boolean;
  /** How many times the informer was restarted after an error. */
  restarts(): number;
  stop(): Promise<void>;
}

/**
 * client-node's Watch, guarded: a watch requested or connected after stop() is aborted at once.
 * ListWatch.stop() only aborts the current watch; a list or a connect in flight carries on and would
 * open a watch after the informer was stopped. It also tells us when a watch has connected.
 */
class GuardedWatch extends Watch {
  stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly onWatchCalled: () => void,
    private readonly onConnected: () => void,
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.stopped) {
      const aborted = new AbortController();
      aborted.abort();
      return aborted;
    }
    this.onWatchCalled();
    let failed = false;
    const controller = await super.watch(path, queryParams, callback, (err: unknown) => {
      if (err) failed = true;
      done(err);
    });
    if (this.stopped) controller.abort();
    else if (!failed) this.onConnected();
    return controller;
  }
}

function withWatchTimeout(path: string, seconds: number): string {
  return `${path}${path.includes('?') ? '&' : '?'}timeoutSeconds=${Math.round(seconds)}`;
}

/** Starts an informer on `path`; resolves once its first list is in the cache. */
export function startInformer<T extends KubernetesObject>(
  o: InformerOptions<T>,
): Promise<SupervisedInformer<T>> {
  const log = o.logger ?? silentLogger;
  const minBackoffMs = o.minBackoffMs ?? 200;
  const maxBackoffMs = o.maxBackoffMs ?? 30_000;
  const watchTimeoutSeconds = o.watchTimeoutSeconds ?? 300 + Math.random() * 300;
  if (!(minBackoffMs > 0)) throw invalidArgument('minBackoffMs', 'must be positive', 'pass e.g. 200');
  if (!(maxBackoffMs >= minBackoffMs))
    throw invalidArgument('maxBackoffMs', 'must be at least minBackoffMs', 'pass e.g. 30000');
  if (!(watchTimeoutSeconds >= 1))
    throw invalidArgument('watchTimeoutSeconds', 'must be at least 1', 'pass e.g. 300');

  let stopped = false;
  let hasSynced = false;
  let restartCount = 0;
  let failures = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let resyncTimer: NodeJS.Timeout | undefined;
  let resolveSynced!: () => void;
  let rejectSynced!: (err: unknown) => void;
  const firstSync = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });

  // ListWatch only starts a watch once a list is in its cache, so the first watch call marks the sync.
  const markSynced = () => {
    if (hasSynced) return;
    hasSynced = true;
    resolveSynced();
  };
  const watch = new GuardedWatch(o.kc, markSynced, () => {
    failures = 0;
  });
  const cache = new ListWatch<T>(
    withWatchTimeout(o.path, watchTimeoutSeconds),
    watch,
    o.list,
    false,
    o.labelSelector,
  );

  const deliver = (type: InformerEventType) => (obj: T) => {
    if (stopped) return;
    try {
      o.onEvent(type, obj);
    } catch (err) {
      log.warn({ err, path: o.path, type, name: obj.metadata?.name }, 'informer event handler threw');
    }
  };
  cache.on(ADD, deliver('add'));
  cache.on(UPDATE, deliver('update'));
  cache.on(DELETE, deliver('delete'));

  const begin = async () => {
    try {
      await cache.start();
    } catch (err) {
      // start() rejects when it cannot even build a request (no cluster, failing auth plugin).
      scheduleRestart(err);
    }
  };
  const scheduleRestart = (err: unknown) => {
    if (stopped || restartTimer) return;
    const delayMs = Math.min(maxBackoffMs, minBackoffMs * 2 ** failures) * (0.8 + Math.random() * 0.4);
    failures++;
    log.warn(
      { err, path: o.path, delayMs: Math.round(delayMs), restarts: restartCount },
      'informer restarting',
    );
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      restartCount++;
      void begin();
    }, delayMs);
  };
  // stop() aborts the watch, which client-node reports as an error too: ignored once stopped.
  cache.on(ERROR, (err) => {
    if (!stopped) scheduleRestart(err);
  });

  if (o.resyncMs) {
    resyncTimer = setInterval(() => {
      if (hasSynced) for (const obj of cache.list()) deliver('resync')(obj);
    }, o.resyncMs);
  }

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    watch.stopped = true;
    clearTimeout(restartTimer);
    clearInterval(resyncTimer);
    await cache.stop();
    rejectSynced(new Error(`informer on ${o.path} stopped before its first list`));
  };
  const onAbort = () => void stop();
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const informer: SupervisedInformer<T> = {
    list: () => [...cache.list()],
    get: (namespace, name) => cache.get(name, namespace),
    synced: () => hasSynced,
    restarts: () => restartCount,
    stop,
  };
  if (o.signal?.aborted) void stop();
  else void begin();
  return firstSync.then(
    () => {
      o.signal?.removeEventListener('abort', onAbort);
      return informer;
    },
    (err: unknown) => {
      throw o.signal?.aborted ? (o.signal.reason ?? err) : err;
    },
  );
}
