/**
 * The object store: one global, monotonically increasing resourceVersion, a change history for watches
 * (bounded: older revisions are compacted away and answer 410), and the write rules of the real apiserver
 * (server-managed metadata, status subresource, generation, finalizers, deletion, garbage collection).
 * Everything is synchronous, so each write is atomic.
 */
import { randomUUID } from 'node:crypto';
import { defaultPropagation, initialStatus, prepareWrite } from './builtin-behaviour.js';
import { collectGarbage, type GcStore, type StoredObject } from './garbage-collector.js';
import {
  type ManagedFieldsEntry,
  type OwnershipContext,
  recordUpdate,
  serverSideApply,
  withoutTimes,
} from './managed-fields.js';
import { isObject, jsonPatch, mergePatch, PatchTypes, strategicMergePatch } from './patch.js';
import {
  apiVersionOf,
  type JsonObject,
  type ResourceRegistry,
  type ResourceType,
  resourceKey,
  typesFromCrd,
} from './resources.js';
import type { Matcher } from './selectors.js';
import { errors } from './status.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  rv: number;
  type: WatchEventType;
  resource: string;
  object: JsonObject;
  /** The object before this change (absent for ADDED); lets a filtered watch see objects leave its selector. */
  prev?: JsonObject;
}

/** One committed mutation, for test assertions (`server.events`). */
export interface MutationRecord {
  type: WatchEventType;
  verb: string;
  resource: string;
  subresource?: string;
  namespace: string;
  name: string;
  resourceVersion: string;
  manager: string;
  object: JsonObject;
}

export interface WriteContext {
  /** fieldManager, or the client's user-agent product when none was given. */
  manager: string;
  verb: string;
  subresource?: 'status';
}

export interface ListOptions {
  labelSelector?: Matcher;
  fieldSelector?: Matcher;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  limit?: number;
  continueToken?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  preconditions?: { uid?: string; resourceVersion?: string };
}

interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  finalizers?: string[];
  ownerReferences?: { uid: string; blockOwnerDeletion?: boolean }[];
  managedFields?: ManagedFieldsEntry[];
  [k: string]: unknown;
}

export const metaOf = (obj: JsonObject): Meta => (obj.metadata ?? {}) as Meta;

const CRD_KEY = 'customresourcedefinitions.apiextensions.k8s.io';
const nameChars = 'bcdfghjklmnpqrstvwxz2456789';

export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class Store implements GcStore {
  private readonly objects = new Map<string, Map<string, StoredObject>>();
  private rv = 0;
  private compacted = 0;
  private history: Change[] = [];
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly pending: Change[] = [];
  private draining = false;
  readonly mutations: MutationRecord[] = [];

  constructor(
    readonly registry: ResourceRegistry,
    private readonly historyLimit: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get resourceVersion(): number {
    return this.rv;
  }

  /** Watches and exact lists from a resourceVersion below this answer 410 Gone. */
  get compactedRevision(): number {
    return this.compacted;
  }

  /** Forgets all history, like an etcd compaction at the current revision. */
  compact(): void {
    this.compacted = this.rv;
    this.history = [];
  }

  /** Changes after `rv`, or undefined when they were compacted away. */
  changesAfter(rv: number): Change[] | undefined {
    if (rv < this.compacted) return undefined;
    return this.history.filter((c) => c.rv > rv);
  }

  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- reads ----

  private bucket(type: ResourceType): Map<string, StoredObject> {
    const key = resourceKey(type);
    let b = this.objects.get(key);
    if (!b) {
      b = new Map();
      this.objects.set(key, b);
    }
    return b;
  }

  private present(type: ResourceType, obj: JsonObject): JsonObject {
    const out = structuredClone(obj);
    out.apiVersion = apiVersionOf(type);
    out.kind = type.kind;
    return out;
  }

  find(type: ResourceType, namespace: string, name: string): JsonObject | undefined {
    const stored = this.bucket(type).get(`${type.namespaced ? namespace : ''}/${name}`);
    return stored && this.present(type, stored.obj);
  }

  get(type: ResourceType, namespace: string, name: string): JsonObject {
    const obj = this.find(type, namespace, name);
    if (!obj) throw errors.notFound(type, name);
    return obj;
  }

  /** A list at the current revision, or (resourceVersionMatch=Exact, or a continue token) at an older one. */
  list(
    type: ResourceType,
    namespace: string | undefined,
    opts: ListOptions = {},
  ): { items: JsonObject[]; resourceVersion: string; continue?: string } {
    let at = this.rv;
    let start = '';
    if (opts.continueToken) {
      const token = JSON.parse(Buffer.from(opts.continueToken, 'base64').toString()) as {
        rv: number;
        start: string;
      };
      at = token.rv;
      start = token.start;
      if (at < this.compacted) {
        throw errors.expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
    } else if (
      opts.resourceVersion &&
      opts.resourceVersion !== '0' &&
      opts.resourceVersionMatch === 'Exact'
    ) {
      at = Number(opts.resourceVersion);
      if (at < this.compacted)
        throw errors.expired(`too old resource version: ${at} (${this.compacted + 1})`);
    }
    const state = this.stateAt(type, at);
    const keys = [...state.keys()].filter((k) => k > start).sort();
    const items: JsonObject[] = [];
    let next: string | undefined;
    for (const key of keys) {
      const obj = state.get(key)!;
      const meta = metaOf(obj);
      if (namespace !== undefined && type.namespaced && meta.namespace !== namespace) continue;
      if (opts.labelSelector && !opts.labelSelector(obj)) continue;
      if (opts.fieldSelector && !opts.fieldSelector(this.present(type, obj))) continue;
      if (opts.limit && items.length === opts.limit) {
        next = Buffer.from(JSON.stringify({ rv: at, start: keys[keys.indexOf(key) - 1] })).toString('base64');
        break;
      }
      const item = this.present(type, obj);
      // Typed (built-in) lists carry kind/apiVersion on the list only, as the real server answers.
      if (!type.custom) {
        delete item.apiVersion;
        delete item.kind;
      }
      items.push(item);
    }
    return next
      ? { items, resourceVersion: String(at), continue: next }
      : { items, resourceVersion: String(at) };
  }

  private stateAt(type: ResourceType, rv: number): Map<string, JsonObject> {
    const state = new Map([...this.bucket(type)].map(([k, v]) => [k, v.obj]));
    const key = resourceKey(type);
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.rv > rv; i--) {
      const change = this.history[i]!;
      if (change.resource !== key) continue;
      const meta = metaOf(change.object);
      const k = `${type.namespaced ? (meta.namespace ?? '') : ''}/${meta.name}`;
      if (change.prev) state.set(k, change.prev);
      else state.delete(k);
    }
    return state;
  }

  // ---- writes ----

  create(
    type: ResourceType,
    namespace: string,
    body: unknown,
    ctx: WriteContext,
    managed?: ManagedFieldsEntry[],
  ): JsonObject {
    if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
    const obj = structuredClone(body);
    const meta = (obj.metadata ?? {}) as Meta;
    obj.metadata = meta;
    if (obj.kind !== undefined && obj.kind !== type.kind) {
      throw errors.badRequest(
        `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(type)})`,
      );
    }
    if (type.namespaced) {
      if (meta.namespace && meta.namespace !== namespace) {
        throw errors.badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = namespace;
    } else delete meta.namespace;
    if (!meta.name && meta.generateName) meta.name = this.generateName(type, namespace, meta.generateName);
    if (!meta.name) {
      throw errors.invalid(type, '', [
        {
          reason: 'FieldValueRequired',
          message: 'Required value: name or generateName is required',
          field: 'metadata.name',
        },
      ]);
    }
    if (type.namespaced && !namespace) throw errors.badRequest('the namespace of the object must be set');
    if (this.find(type, namespace, meta.name)) throw errors.alreadyExists(type, meta.name);
    if (resourceKey(type) === CRD_KEY) this.checkCrd(type, obj);
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(this.now());
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.resourceVersion;
    if (type.hasGeneration) meta.generation = 1;
    else delete meta.generation;
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    if (type.statusSubresource) {
      const status = initialStatus(type, obj);
      if (status) obj.status = status;
      else delete obj.status;
    }
    prepareWrite(type, obj, undefined);
    meta.managedFields = managed ?? recordUpdate(undefined, obj, this.ownership(type, ctx));
    const out = this.commit(type, 'ADDED', obj, undefined, ctx);
    collectGarbage(this);
    return out;
  }

  private generateName(type: ResourceType, namespace: string, prefix: string): string {
    for (;;) {
      let suffix = '';
      for (let i = 0; i < 5; i++) suffix += nameChars[Math.floor(Math.random() * nameChars.length)];
      const name = `${prefix}${suffix}`;
      if (!this.find(type, namespace, name)) return name;
    }
  }

  private checkCrd(type: ResourceType, obj: JsonObject): void {
    try {
      typesFromCrd(obj);
    } catch (e) {
      throw errors.invalid(type, String(metaOf(obj).name ?? ''), [
        { reason: 'FieldValueInvalid', message: String(e), field: 'spec' },
      ]);
    }
  }

  /** PUT: the whole object, guarded by metadata.resourceVersion. */
  update(type: ResourceType, namespace: string, name: string, body: unknown, ctx: WriteContext): JsonObject {
    if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
    const old = this.get(type, namespace, name);
    const next = structuredClone(body);
    const meta = (next.metadata ?? {}) as Meta;
    next.metadata = meta;
    if (meta.name !== undefined && meta.name !== name) {
      throw errors.badRequest(
        `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
      );
    }
    if (type.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw errors.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (!meta.resourceVersion && type.custom) {
      throw errors.invalid(type, name, [
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: 0x0: must be specified for an update',
          field: 'metadata.resourceVersion',
        },
      ]);
    }
    return this.writeUpdate(type, old, next, ctx);
  }

  /** PATCH in any of the four content types; a resourceVersion in the patch is a precondition. */
  patch(
    type: ResourceType,
    namespace: string,
    name: string,
    contentType: string,
    body: unknown,
    ctx: WriteContext & { force?: boolean },
  ): JsonObject {
    if (contentType === PatchTypes.apply) return this.apply(type, namespace, name, body, ctx);
    const old = this.get(type, namespace, name);
    let patched: unknown;
    if (contentType === PatchTypes.merge) patched = mergePatch(old, body);
    else if (contentType === PatchTypes.json) patched = jsonPatch(old, body);
    else if (contentType === PatchTypes.strategic) {
      if (type.custom) {
        throw errors.unsupportedMediaType(contentType, [PatchTypes.json, PatchTypes.merge, PatchTypes.apply]);
      }
      patched = strategicMergePatch(old, body);
    } else {
      throw errors.unsupportedMediaType(contentType, Object.values(PatchTypes));
    }
    if (!isObject(patched)) throw errors.badRequest('the patch did not produce an object');
    return this.writeUpdate(type, old, patched, ctx);
  }

  private apply(
    type: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    ctx: WriteContext & { force?: boolean },
  ): JsonObject {
    if (!isObject(body)) throw errors.badRequest('the apply configuration must be an object');
    const meta = (body.metadata ?? {}) as Meta;
    if (meta.name !== undefined && meta.name !== name) {
      throw errors.badRequest(
        `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
      );
    }
    if (body.kind !== type.kind || body.apiVersion !== apiVersionOf(type)) {
      throw errors.badRequest(
        `apply configuration must set apiVersion: ${apiVersionOf(type)} and kind: ${type.kind}`,
      );
    }
    const applied = structuredClone(body);
    (applied.metadata as Meta) = { ...meta, name };
    const old = this.find(type, namespace, name);
    const own = this.ownership(type, ctx);
    if (!old) {
      if (ctx.subresource) throw errors.notFound(type, name);
      const result = serverSideApply(undefined, applied, own, true, type.statusSubresource ? 'main' : 'all');
      if ('conflicts' in result) throw errors.applyConflict(type, name, result.conflicts);
      return this.create(type, namespace, result.object, ctx, result.managedFields);
    }
    const scope = ctx.subresource ? 'status' : type.statusSubresource ? 'main' : 'all';
    const result = serverSideApply(old, applied, own, ctx.force === true, scope);
    if ('conflicts' in result) throw errors.applyConflict(type, name, result.conflicts);
    return this.writeUpdate(type, old, result.object, ctx, result.managedFields);
  }

  private ownership(type: ResourceType, ctx: WriteContext): OwnershipContext {
    const own: OwnershipContext = {
      manager: ctx.manager,
      apiVersion: apiVersionOf(type),
      time: rfc3339(this.now()),
    };
    if (ctx.subresource) own.subresource = ctx.subresource;
    return own;
  }

  private writeUpdate(
    type: ResourceType,
    old: JsonObject,
    next: JsonObject,
    ctx: WriteContext,
    managed?: ManagedFieldsEntry[],
  ): JsonObject {
    const oldMeta = metaOf(old);
    const name = oldMeta.name!;
    const wanted = metaOf(next).resourceVersion;
    if (wanted && wanted !== oldMeta.resourceVersion) throw errors.conflict(type, name);
    let result: JsonObject;
    if (ctx.subresource === 'status') {
      result = structuredClone(old);
      if (next.status === undefined) delete result.status;
      else result.status = structuredClone(next.status);
    } else {
      result = structuredClone(next);
      const meta = (result.metadata ?? {}) as Meta;
      result.metadata = meta;
      for (const k of [
        'name',
        'namespace',
        'uid',
        'creationTimestamp',
        'deletionTimestamp',
        'deletionGracePeriodSeconds',
        'generation',
        'generateName',
      ] as const) {
        if (oldMeta[k] === undefined) delete meta[k];
        else meta[k] = oldMeta[k] as never;
      }
      if (type.statusSubresource) {
        if (old.status === undefined) delete result.status;
        else result.status = structuredClone(old.status);
      }
      if (oldMeta.deletionTimestamp) {
        const added = (meta.finalizers ?? []).filter((f) => !(oldMeta.finalizers ?? []).includes(f));
        if (added.length > 0) {
          throw errors.invalid(type, name, [
            {
              reason: 'FieldValueForbidden',
              message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
              field: 'metadata.finalizers',
            },
          ]);
        }
      }
      prepareWrite(type, result, old);
    }
    result.apiVersion = apiVersionOf(type);
    result.kind = type.kind;
    const meta = metaOf(result);
    meta.resourceVersion = oldMeta.resourceVersion!;
    if (type.hasGeneration && specChanged(type, old, result)) meta.generation = (oldMeta.generation ?? 0) + 1;
    meta.managedFields = managed ?? recordUpdate(old, result, this.ownership(type, ctx));
    if (sameObject(old, result)) return old;
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      return this.remove(type, result, ctx);
    }
    const out = this.commit(type, 'MODIFIED', result, old, ctx);
    collectGarbage(this);
    return out;
  }

  /**
   * DELETE: objects with finalizers get deletionTimestamp and stay until the finalizers are removed;
   * the others go at once. Dependents follow through the garbage collector.
   */
  delete(
    type: ResourceType,
    namespace: string,
    name: string,
    opts: DeleteOptions,
    ctx: WriteContext,
  ): { object: JsonObject; removed: boolean } {
    const old = this.get(type, namespace, name);
    const oldMeta = metaOf(old);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== oldMeta.uid) {
      throw errors.conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${oldMeta.uid}`,
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== oldMeta.resourceVersion) {
      throw errors.conflict(
        type,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${oldMeta.resourceVersion}`,
      );
    }
    if (oldMeta.deletionTimestamp) return { object: old, removed: false };
    const policy = opts.propagationPolicy ?? defaultPropagation(type);
    if (policy === 'Orphan') this.orphanDependents(oldMeta.uid!);
    const finalizers = [...(oldMeta.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion'))
      finalizers.push('foregroundDeletion');
    if (finalizers.length === 0) {
      const removed = this.remove(type, old, ctx);
      return { object: removed, removed: true };
    }
    const next = structuredClone(old);
    const meta = metaOf(next);
    meta.deletionTimestamp = rfc3339(this.now());
    meta.deletionGracePeriodSeconds = 0;
    meta.finalizers = finalizers;
    // The real server bumps generation when it sets deletionTimestamp.
    if (type.hasGeneration) meta.generation = (oldMeta.generation ?? 0) + 1;
    const out = this.commit(type, 'MODIFIED', next, old, ctx);
    collectGarbage(this);
    return { object: out, removed: false };
  }

  private remove(type: ResourceType, obj: JsonObject, ctx: WriteContext): JsonObject {
    const meta = metaOf(obj);
    const prev = this.find(type, meta.namespace ?? '', meta.name!);
    const out = this.commit(type, 'DELETED', obj, prev, ctx);
    if (resourceKey(type) === CRD_KEY) this.dropCustomResources(obj);
    collectGarbage(this);
    return out;
  }

  private dropCustomResources(crd: JsonObject): void {
    const types = typesFromCrd(crd);
    const first = types[0];
    if (!first) return;
    for (const stored of [...this.bucket(first).values()]) {
      this.commit(first, 'DELETED', stored.obj, stored.obj, {
        manager: 'apiextensions-apiserver',
        verb: 'delete',
      });
    }
    this.registry.remove(first.group, first.plural);
  }

  private orphanDependents(uid: string): void {
    for (const dep of this.allObjects()) {
      const refs = metaOf(dep.obj).ownerReferences ?? [];
      if (refs.some((r) => r.uid === uid))
        this.setOwnerReferences(
          dep,
          refs.filter((r) => r.uid !== uid),
        );
    }
  }

  // ---- the garbage collector's access (GcStore) ----

  allObjects(): StoredObject[] {
    return [...this.objects.values()].flatMap((b) => [...b.values()]);
  }

  setOwnerReferences(target: StoredObject, refs: { uid: string }[]): void {
    const next = structuredClone(target.obj);
    const meta = metaOf(next);
    if (refs.length > 0) meta.ownerReferences = refs;
    else delete meta.ownerReferences;
    this.commit(target.type, 'MODIFIED', next, target.obj, {
      manager: 'generic-garbage-collector',
      verb: 'patch',
    });
  }

  removeFinalizer(target: StoredObject, finalizer: string): void {
    const next = structuredClone(target.obj);
    const meta = metaOf(next);
    meta.finalizers = (meta.finalizers ?? []).filter((f) => f !== finalizer);
    const ctx = { manager: 'generic-garbage-collector', verb: 'patch' };
    if (meta.finalizers.length === 0 && meta.deletionTimestamp)
      this.commit(target.type, 'DELETED', next, target.obj, ctx);
    else this.commit(target.type, 'MODIFIED', next, target.obj, ctx);
  }

  deleteDependent(target: StoredObject, policy: 'Background' | 'Foreground'): void {
    const meta = metaOf(target.obj);
    this.delete(
      target.type,
      meta.namespace ?? '',
      meta.name!,
      { propagationPolicy: policy },
      {
        manager: 'generic-garbage-collector',
        verb: 'delete',
      },
    );
  }

  // ---- commit ----

  private commit(
    type: ResourceType,
    kind: WatchEventType,
    obj: JsonObject,
    prev: JsonObject | undefined,
    ctx: WriteContext,
  ): JsonObject {
    this.rv += 1;
    const stored = structuredClone(obj);
    const meta = metaOf(stored);
    meta.resourceVersion = String(this.rv);
    const bucket = this.bucket(type);
    const key = `${type.namespaced ? (meta.namespace ?? '') : ''}/${meta.name}`;
    if (kind === 'DELETED') bucket.delete(key);
    else bucket.set(key, { type, obj: stored });
    const change: Change = { rv: this.rv, type: kind, resource: resourceKey(type), object: stored };
    if (prev) change.prev = prev;
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compacted = dropped[dropped.length - 1]!.rv;
    }
    const record: MutationRecord = {
      type: kind,
      verb: ctx.verb,
      resource: resourceKey(type),
      namespace: meta.namespace ?? '',
      name: meta.name!,
      resourceVersion: meta.resourceVersion,
      manager: ctx.manager,
      object: this.present(type, stored),
    };
    if (ctx.subresource) record.subresource = ctx.subresource;
    this.mutations.push(record);
    if (resourceKey(type) === CRD_KEY && kind !== 'DELETED') {
      for (const t of typesFromCrd(stored)) this.registry.add(t);
    }
    this.pending.push(change);
    this.drain();
    return this.present(type, stored);
  }

  /** Listeners see changes strictly in revision order, even when a listener writes from its callback. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let c = this.pending.shift(); c; c = this.pending.shift()) {
        for (const listener of [...this.listeners]) listener(c);
      }
    } finally {
      this.draining = false;
    }
  }
}

function stripForGeneration(type: ResourceType, obj: JsonObject): JsonObject {
  const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = obj;
  if (type.statusSubresource) delete rest.status;
  return rest;
}

function specChanged(type: ResourceType, a: JsonObject, b: JsonObject): boolean {
  return stableStringify(stripForGeneration(type, a)) !== stableStringify(stripForGeneration(type, b));
}

function sameObject(a: JsonObject, b: JsonObject): boolean {
  const norm = (o: JsonObject) => {
    const c = structuredClone(o);
    const m = metaOf(c);
    m.managedFields = withoutTimes(m.managedFields) as ManagedFieldsEntry[];
    return stableStringify(c);
  };
  return norm(a) === norm(b);
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
