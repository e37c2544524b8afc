/** The patch formats the apiserver accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge. */
import type { JsonObject } from './resources.js';
import { errors } from './status.js';

export const PatchTypes = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, null deletes, everything else (arrays too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw errors.badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function parentOf(
  doc: unknown,
  parts: string[],
  path: string,
): { parent: JsonObject | unknown[]; key: string } {
  let cur: unknown = doc;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(part)];
    else if (isObject(cur)) cur = cur[part];
    else cur = undefined;
    if (cur === undefined) throw invalidPatch(`doc is missing path: "${path}"`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw invalidPatch(`doc is missing path: "${path}"`);
  return { parent: cur, key: parts[parts.length - 1]! };
}

/** The apiserver answers a JSON patch that cannot apply with 422 (the request itself parsed). */
function invalidPatch(message: string) {
  const err = errors.badRequest(message);
  err.status.code = 422;
  err.status.reason = 'Invalid';
  return err;
}

function getAt(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const part of pointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(part)];
    else if (isObject(cur)) cur = cur[part];
    else cur = undefined;
    if (cur === undefined) throw invalidPatch(`doc is missing path: "${path}"`);
  }
  return cur;
}

function addAt(doc: unknown, path: string, value: unknown, replace: boolean): unknown {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length)
      throw invalidPatch(`index out of range: "${path}"`);
    if (replace) {
      if (index >= parent.length) throw invalidPatch(`doc is missing path: "${path}"`);
      parent[index] = structuredClone(value);
    } else parent.splice(index, 0, structuredClone(value));
  } else {
    if (replace && !(key in parent)) throw invalidPatch(`doc is missing key: "${path}"`);
    parent[key] = structuredClone(value);
  }
  return doc;
}

function removeAt(doc: unknown, path: string): unknown {
  const parts = pointer(path);
  const { parent, key } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length)
      throw invalidPatch(`index out of range: "${path}"`);
    parent.splice(index, 1);
  } else {
    if (!(key in parent)) throw invalidPatch(`doc is missing key: "${path}"`);
    delete parent[key];
  }
  return doc;
}

/** RFC 6902. A failed `test` is answered 422 by the real server; so it is here. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    switch (raw.op) {
      case 'add':
        doc = addAt(doc, raw.path, raw.value, false);
        break;
      case 'replace':
        doc = addAt(doc, raw.path, raw.value, true);
        break;
      case 'remove':
        doc = removeAt(doc, raw.path);
        break;
      case 'move': {
        const value = getAt(doc, raw.from ?? '');
        doc = removeAt(doc, raw.from ?? '');
        doc = addAt(doc, raw.path, value, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, raw.path, getAt(doc, raw.from ?? ''), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, raw.path)) !== JSON.stringify(raw.value)) {
          throw invalidPatch(`testing value ${raw.path} failed`);
        }
        break;
      default:
        throw errors.badRequest(`Unexpected kind: ${raw.op}`);
    }
  }
  return doc;
}

/**
 * The merge keys of the built-in lists that strategic merge patch merges item by item; every other list
 * is replaced, as for a JSON merge patch. A subset of the real patchMergeKey table.
 */
const mergeKeys: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  conditions: 'type',
  ownerReferences: 'uid',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
};

/** Primitive lists whose patchStrategy is `merge` (union) rather than replace. */
const mergedPrimitiveLists = new Set(['finalizers']);

/** Strategic merge patch over the built-in lists above, with `$patch: delete|replace` directives. */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) {
      delete out[key];
      continue;
    }
    const current = out[key];
    if (Array.isArray(value) && Array.isArray(current) && mergeKeys[key]) {
      out[key] = mergeList(current, value, mergeKeys[key]);
    } else if (Array.isArray(value) && Array.isArray(current) && mergedPrimitiveLists.has(key)) {
      out[key] = [...current, ...value.filter((v) => !current.includes(v))];
    } else {
      const merged = strategicMergePatch(current, value);
      if (merged === undefined) delete out[key];
      else out[key] = merged;
    }
  }
  return out;
}

function mergeList(current: unknown[], patch: unknown[], key: string): unknown[] {
  const out = [...current];
  for (const item of patch) {
    if (!isObject(item)) continue;
    const index = out.findIndex((c) => isObject(c) && c[key] === item[key]);
    if (item.$patch === 'delete') {
      if (index >= 0) out.splice(index, 1);
    } else if (index >= 0) out[index] = strategicMergePatch(out[index], item);
    else out.push(strategicMergePatch(undefined, item));
  }
  return out;
}
