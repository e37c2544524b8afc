/**
 * An approximation of server-side apply: field ownership per manager recorded in metadata.managedFields
 * (FieldsV1), conflicts when an applier changes a field another manager owns, and removal of fields a
 * manager applied before and no longer applies. Maps merge per key; lists are atomic (the real server
 * merges `listType: map` lists per key).
 */
import { isObject } from './patch.js';
import type { JsonObject } from './resources.js';
import type { StatusCause } from './status.js';

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

type Path = string[];

/** Metadata the server owns; nobody manages these fields. */
const untrackedMetadata = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'generateName',
  'selfLink',
]);

/** Leaf paths of an object: scalars, lists and empty maps. apiVersion/kind and server metadata are skipped. */
export function leafPaths(obj: unknown, only?: 'status' | 'main'): Path[] {
  const out: Path[] = [];
  const walk = (value: unknown, path: Path) => {
    if (isObject(value) && Object.keys(value).length > 0) {
      for (const [k, v] of Object.entries(value)) {
        if (path.length === 0 && (k === 'apiVersion' || k === 'kind')) continue;
        if (path.length === 1 && path[0] === 'metadata' && untrackedMetadata.has(k)) continue;
        if (path.length === 0 && only === 'status' && k !== 'status') continue;
        if (path.length === 0 && only === 'main' && k === 'status') continue;
        walk(v, [...path, k]);
      }
    } else if (path.length > 0) out.push(path);
  };
  walk(obj, []);
  return out;
}

export function valueAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const p of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function deleteAt(obj: JsonObject, path: Path): void {
  const parents: JsonObject[] = [];
  let cur: unknown = obj;
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur)) return;
    parents.push(cur);
    cur = cur[p];
  }
  if (!isObject(cur)) return;
  delete cur[path[path.length - 1]!];
  // Drop maps the removal left empty, as the real server does for fields nobody set any more.
  for (let i = parents.length - 1; i >= 0; i--) {
    const child = parents[i]![path[i]!];
    if (isObject(child) && Object.keys(child).length === 0 && !(i === 0 && path[0] === 'metadata')) {
      delete parents[i]![path[i]!];
    } else break;
  }
}

const key = (p: Path) => JSON.stringify(p);
const overlaps = (a: Path, b: Path) => {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
};

export function toFieldsV1(paths: Path[]): JsonObject {
  const root: JsonObject = {};
  for (const path of paths) {
    let cur = root;
    for (const p of path) {
      const k = `f:${p}`;
      cur[k] ??= {};
      cur = cur[k] as JsonObject;
    }
  }
  return root;
}

export function fromFieldsV1(fields: JsonObject): Path[] {
  const out: Path[] = [];
  const walk = (node: JsonObject, path: Path) => {
    const children = Object.keys(node).filter((k) => k.startsWith('f:'));
    if (children.length === 0 && path.length > 0) out.push(path);
    for (const k of children) walk(node[k] as JsonObject, [...path, k.slice(2)]);
  };
  walk(fields, []);
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function withoutPaths(entry: ManagedFieldsEntry, drop: Path[]): ManagedFieldsEntry {
  const remaining = fromFieldsV1(entry.fieldsV1).filter((p) => !drop.some((d) => overlaps(p, d)));
  return { ...entry, fieldsV1: toFieldsV1(remaining) };
}

function nonEmpty(entries: ManagedFieldsEntry[]): ManagedFieldsEntry[] {
  return entries.filter((e) => Object.keys(e.fieldsV1).length > 0);
}

export interface OwnershipContext {
  manager: string;
  apiVersion: string;
  time: string;
  subresource?: string;
}

/** Records an Update by `manager`: it takes ownership of every field whose value it changed. */
export function recordUpdate(
  old: JsonObject | undefined,
  next: JsonObject,
  ctx: OwnershipContext,
): ManagedFieldsEntry[] {
  const entries =
    ((old?.metadata as JsonObject | undefined)?.managedFields as ManagedFieldsEntry[] | undefined) ?? [];
  const changed = leafPaths(next).filter((p) => !sameValue(valueAt(old, p), valueAt(next, p)));
  const removed = old ? leafPaths(old).filter((p) => valueAt(next, p) === undefined) : [];
  if (changed.length === 0 && removed.length === 0) return entries;
  const others = entries.map((e) => withoutPaths(e, [...changed, ...removed]));
  const mine = others.find((e) => isEntryOf(e, ctx, 'Update'));
  const minePaths = [...(mine ? fromFieldsV1(mine.fieldsV1) : []), ...changed];
  const dedup = [...new Map(minePaths.map((p) => [key(p), p])).values()];
  const entry = makeEntry(ctx, 'Update', dedup);
  return nonEmpty([...others.filter((e) => e !== mine), entry]);
}

function isEntryOf(e: ManagedFieldsEntry, ctx: OwnershipContext, operation: 'Apply' | 'Update'): boolean {
  return (
    e.manager === ctx.manager &&
    e.operation === operation &&
    (e.subresource ?? '') === (ctx.subresource ?? '')
  );
}

function makeEntry(ctx: OwnershipContext, operation: 'Apply' | 'Update', paths: Path[]): ManagedFieldsEntry {
  const entry: ManagedFieldsEntry = {
    manager: ctx.manager,
    operation,
    apiVersion: ctx.apiVersion,
    time: ctx.time,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(paths),
  };
  if (ctx.subresource) entry.subresource = ctx.subresource;
  return entry;
}

function deepMerge(target: unknown, patch: unknown): unknown {
  if (!isObject(patch) || !isObject(target)) return structuredClone(patch);
  const out: JsonObject = { ...target };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(out[k], v);
  return out;
}

export type ApplyResult =
  | { object: JsonObject; managedFields: ManagedFieldsEntry[] }
  | { conflicts: StatusCause[] };

/**
 * Server-side apply of `applied` onto `live` (undefined when creating). `scope` restricts the applied
 * configuration to .status (the status subresource) or to everything but .status.
 */
export function serverSideApply(
  live: JsonObject | undefined,
  applied: JsonObject,
  ctx: OwnershipContext,
  force: boolean,
  scope: 'status' | 'main' | 'all',
): ApplyResult {
  const entries =
    ((live?.metadata as JsonObject | undefined)?.managedFields as ManagedFieldsEntry[] | undefined) ?? [];
  const config: JsonObject = structuredClone(applied);
  if (scope === 'status') {
    for (const k of Object.keys(config))
      if (!['apiVersion', 'kind', 'metadata', 'status'].includes(k)) delete config[k];
    config.metadata = {};
  } else if (scope === 'main') delete config.status;
  const applyPaths = leafPaths(config, scope === 'status' ? 'status' : undefined);

  const mine = entries.find((e) => isEntryOf(e, ctx, 'Apply'));
  const others = entries.filter((e) => e !== mine);
  const conflicts: StatusCause[] = [];
  const taken: Path[] = [];
  for (const path of applyPaths) {
    if (sameValue(valueAt(live, path), valueAt(config, path))) continue;
    for (const other of others) {
      const owned = fromFieldsV1(other.fieldsV1).filter((p) => overlaps(p, path));
      if (owned.length === 0) continue;
      taken.push(path);
      if (!force) {
        conflicts.push({
          reason: 'FieldManagerConflict',
          message: `conflict with "${other.manager}"`,
          field: `.${path.join('.')}`,
        });
      }
    }
  }
  if (conflicts.length > 0) return { conflicts };

  const object = deepMerge(live ?? {}, config) as JsonObject;
  // Fields this manager applied before, applies no more, and nobody else owns are removed.
  const stillOwned = others.flatMap((e) => fromFieldsV1(e.fieldsV1));
  const dropped = (mine ? fromFieldsV1(mine.fieldsV1) : []).filter(
    (p) => !applyPaths.some((a) => overlaps(a, p)) && !stillOwned.some((o) => key(o) === key(p)),
  );
  for (const p of dropped) deleteAt(object, p);

  const managedFields = nonEmpty([
    ...others.map((e) => withoutPaths(e, taken)),
    makeEntry(ctx, 'Apply', applyPaths),
  ]);
  return { object, managedFields };
}

/** managedFields compared without their timestamps (a no-op write must stay a no-op). */
export function withoutTimes(entries: unknown): unknown {
  return Array.isArray(entries) ? entries.map((e) => ({ ...(e as JsonObject), time: undefined })) : entries;
}
