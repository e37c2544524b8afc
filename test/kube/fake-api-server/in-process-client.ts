/**
 * Direct access to the fake server's store, for test code and the fake kubelet: the same write rules as
 * over HTTP, but not counted as API requests. Resources are named `pods`, `jobs.batch`, `rlhfruns.rlhf.dev`.
 */
import type { JsonObject, ResourceRegistry, ResourceType } from './resources.js';
import { resourceKey } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { Change, DeleteOptions, Store, WatchEventType } from './storage.js';

export class InProcessClient {
  constructor(
    private readonly store: Store,
    private readonly registry: ResourceRegistry,
    private readonly manager: string,
  ) {}

  /** The same store under another field manager name. */
  as(manager: string): InProcessClient {
    return new InProcessClient(this.store, this.registry, manager);
  }

  type(resource: string): ResourceType {
    const t = this.registry.byName(resource);
    if (!t) throw new Error(`unknown resource "${resource}" (use e.g. pods, jobs.batch, rlhfruns.rlhf.dev)`);
    return t;
  }

  get(resource: string, namespace: string, name: string): JsonObject {
    return this.store.get(this.type(resource), namespace, name);
  }

  find(resource: string, namespace: string, name: string): JsonObject | undefined {
    return this.store.find(this.type(resource), namespace, name);
  }

  list(
    resource: string,
    namespace?: string,
    opts: { labelSelector?: string; fieldSelector?: string } = {},
  ): JsonObject[] {
    const type = this.type(resource);
    return this.store
      .list(type, namespace, {
        labelSelector: parseLabelSelector(opts.labelSelector),
        fieldSelector: parseFieldSelector(opts.fieldSelector),
      })
      .items.map((o) => ({
        ...o,
        apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
        kind: type.kind,
      }));
  }

  create(resource: string, namespace: string, obj: JsonObject): JsonObject {
    return this.store.create(this.type(resource), namespace, obj, { manager: this.manager, verb: 'create' });
  }

  update(resource: string, namespace: string, obj: JsonObject): JsonObject {
    const name = (obj.metadata as { name: string }).name;
    return this.store.update(this.type(resource), namespace, name, obj, {
      manager: this.manager,
      verb: 'update',
    });
  }

  updateStatus(resource: string, namespace: string, obj: JsonObject): JsonObject {
    const name = (obj.metadata as { name: string }).name;
    return this.store.update(this.type(resource), namespace, name, obj, {
      manager: this.manager,
      verb: 'update',
      subresource: 'status',
    });
  }

  patch(
    resource: string,
    namespace: string,
    name: string,
    contentType: string,
    body: unknown,
    opts: { status?: boolean; force?: boolean } = {},
  ): JsonObject {
    return this.store.patch(this.type(resource), namespace, name, contentType, body, {
      manager: this.manager,
      verb: 'patch',
      ...(opts.status ? { subresource: 'status' as const } : {}),
      ...(opts.force ? { force: true } : {}),
    });
  }

  delete(
    resource: string,
    namespace: string,
    name: string,
    opts: DeleteOptions = {},
  ): { object: JsonObject; removed: boolean } {
    return this.store.delete(this.type(resource), namespace, name, opts, {
      manager: this.manager,
      verb: 'delete',
    });
  }

  /** Calls `handler` for every later change of the resource (all namespaces); returns the unsubscribe. */
  watch(
    resource: string,
    handler: (type: WatchEventType, obj: JsonObject, change: Change) => void,
  ): () => void {
    const key = resourceKey(this.type(resource));
    return this.store.subscribe((c) => {
      if (c.resource === key) handler(c.type, structuredClone(c.object), c);
    });
  }
}
