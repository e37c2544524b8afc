/**
 * The garbage collector, run synchronously after every write (the real one runs asynchronously):
 * dependents whose owners are all gone are deleted (background), dangling owner references next to live
 * ones are dropped, and an owner deleted in the foreground keeps its `foregroundDeletion` finalizer until
 * no dependent with blockOwnerDeletion remains.
 */
import type { JsonObject, ResourceType } from './resources.js';

export interface StoredObject {
  type: ResourceType;
  obj: JsonObject;
}

interface OwnerRef {
  uid: string;
  blockOwnerDeletion?: boolean;
}

interface GcMeta {
  uid?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: OwnerRef[];
}

export interface GcStore {
  allObjects(): StoredObject[];
  setOwnerReferences(target: StoredObject, refs: OwnerRef[]): void;
  removeFinalizer(target: StoredObject, finalizer: string): void;
  deleteDependent(target: StoredObject, policy: 'Background' | 'Foreground'): void;
}

const meta = (s: StoredObject) => (s.obj.metadata ?? {}) as GcMeta;

/** One pass; true when it changed something (the caller loops until a pass changes nothing). */
function sweep(store: GcStore): boolean {
  const all = store.allObjects();
  const uids = new Set(all.map((s) => meta(s).uid));
  const dependentsOf = (uid: string) =>
    all.filter((s) => (meta(s).ownerReferences ?? []).some((r) => r.uid === uid));
  for (const s of all) {
    const m = meta(s);
    if (m.deletionTimestamp && m.finalizers?.includes('foregroundDeletion')) {
      const dependents = dependentsOf(m.uid!);
      const live = dependents.find((d) => !meta(d).deletionTimestamp);
      if (live) {
        store.deleteDependent(live, 'Foreground');
        return true;
      }
      const blocking = dependents.some((d) =>
        meta(d).ownerReferences?.some((r) => r.uid === m.uid && r.blockOwnerDeletion),
      );
      if (!blocking) {
        store.removeFinalizer(s, 'foregroundDeletion');
        return true;
      }
    }
    const refs = m.ownerReferences ?? [];
    if (refs.length > 0 && !m.deletionTimestamp) {
      const dangling = refs.filter((r) => !uids.has(r.uid));
      if (dangling.length === refs.length) {
        store.deleteDependent(s, 'Background');
        return true;
      }
      if (dangling.length > 0) {
        store.setOwnerReferences(
          s,
          refs.filter((r) => uids.has(r.uid)),
        );
        return true;
      }
    }
  }
  return false;
}

let running = false;

export function collectGarbage(store: GcStore): void {
  // Deletions the collector makes re-enter the store, which calls back here; the outer loop covers them.
  if (running) return;
  running = true;
  try {
    for (let i = 0; i < 10_000 && sweep(store); i++) {}
  } finally {
    running = false;
  }
}
