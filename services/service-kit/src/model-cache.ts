/**
 * Loaded models by URI: load on first use, keep the most recently used few, and reload when the artifact
 * behind a URI changes (a new digest), checked at most every `recheckMs`. Concurrent requests for a model
 * that is loading share the one load.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  headTypeOf,
  inferenceSessionOptions,
  type LoadedModelDir,
  loadModelDir,
  type RowLoop,
  rowLoopFor,
  SplitSession,
} from '@rlhf/ml-engine';
import { type ArtifactStore, RlhfError } from '@rlhf/platform';
import { modelVersion } from './model-artifacts.js';
import { acquireModelDir, type CacheLog } from './model-download-cache.js';
import { SharedSession } from './shared-session.js';

export interface LoadedModel {
  uri: string;
  version: string;
  model: LoadedModelDir;
  /** Released only when unused: hold() it for work that spans several runs (see shared-session.ts). */
  session: SharedSession;
  /**
   * A causal LM's row loop, for a lone row's decoding (DecodeLoop), when the model is small enough for the
   * call per token to matter (rowLoopFor); released with `session`, so hold the session while using it.
   */
  rowLoop?: RowLoop;
}

export interface ModelCacheOptions {
  store: ArtifactStore;
  /** The download cache of nats-obj:// models (model-download-cache.ts). */
  cacheDir: string;
  /** The download cache's size limit in bytes (default 20 GiB). */
  cacheMaxBytes?: number;
  /** Where the download cache reports refetched and pruned entries. */
  logger?: CacheLog;
  maxModels?: number;
  recheckMs?: number;
}

interface Entry {
  loading: Promise<LoadedModel>;
  checkedAt: number;
}

export class ModelCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: ModelCacheOptions) {}

  /** The model at `uri`, requiring the given head ('lm' for policies and preference models, 'scalar' for RMs). */
  async get(uri: string, head: 'lm' | 'scalar'): Promise<LoadedModel> {
    const now = Date.now();
    let entry = this.entries.get(uri);
    if (entry && now - entry.checkedAt > (this.o.recheckMs ?? 5000)) {
      entry.checkedAt = now;
      const current = await entry.loading.catch(() => null);
      const version = await modelVersion(this.o.store, uri);
      if (!current || current.version !== version) {
        this.entries.delete(uri);
        // Calls still running on the old version finish on it; it is released after them.
        if (current) void current.session.dispose();
        entry = undefined;
      }
    }
    if (!entry) {
      entry = { loading: this.load(uri), checkedAt: now };
      this.entries.set(uri, entry);
      entry.loading.catch(() => this.entries.delete(uri));
      await this.evict();
    } else {
      // Most recently used last.
      this.entries.delete(uri);
      this.entries.set(uri, entry);
    }
    const loaded = await entry.loading;
    const actual = headTypeOf(loaded.model.config);
    if (actual !== head) {
      throw new RlhfError(
        'FAILED_PRECONDITION',
        head === 'lm'
          ? `${uri} is a reward model (scalar head); this call needs a causal LM`
          : `${uri} is a causal LM; this call needs a reward model (scalar head)`,
        {
          field: 'model.uri',
          fix:
            head === 'lm'
              ? 'pass a policy or preference model'
              : 'pass a reward model (LlamaForSequenceClassification)',
        },
      );
    }
    return loaded;
  }

  private async load(uri: string): Promise<LoadedModel> {
    const version = await modelVersion(this.o.store, uri);
    // Leased while it is read into memory: the cache may prune it once loaded.
    const held = await acquireModelDir(this.o.store, uri, this.o.cacheDir, {
      ...(this.o.cacheMaxBytes === undefined ? {} : { maxBytes: this.o.cacheMaxBytes }),
      ...(this.o.logger ? { logger: this.o.logger } : {}),
    });
    let model: LoadedModelDir;
    let bytes: Uint8Array;
    let session: Awaited<ReturnType<typeof SplitSession.create>>;
    try {
      model = await loadModelDir(held.dir);
      bytes = new Uint8Array(await readFile(join(held.dir, 'model.onnx')));
      // Served models run between other work (sampling, calls): ORT's threads sleep rather than spin when
      // idle, and small runs (decode steps, short batches) take one thread (split-session.ts). Created under
      // the lease: a large model's weights are read from model.onnx.data in the directory as ORT loads.
      session = await SplitSession.create(bytes, model.config, {
        ...inferenceSessionOptions,
        spinning: false,
        externalDataDir: held.dir,
      });
    } finally {
      await held.release();
    }
    const rowLoop = rowLoopFor(bytes, model.config);
    const shared = new SharedSession(session, rowLoop ? [rowLoop] : []);
    return { uri, version, model, session: shared, ...(rowLoop ? { rowLoop } : {}) };
  }

  private async evict(): Promise<void> {
    const max = this.o.maxModels ?? 4;
    while (this.entries.size > max) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      const loaded = await entry.loading.catch(() => null);
      // Released once the calls running on it end, not under them.
      if (loaded) void loaded.session.dispose();
    }
  }

  async close(): Promise<void> {
    for (const entry of this.entries.values()) {
      const loaded = await entry.loading.catch(() => null);
      await loaded?.session.dispose();
    }
    this.entries.clear();
  }
}
