/** Maps an HTTP request to a discovery document or a verb on a resource, and writes the answer. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { returnsObjectOnDelete } from './builtin-behaviour.js';
import { coreVersions, group, groupList, resourceList, versionInfo } from './discovery.js';
import { PatchTypes } from './patch.js';
import { apiVersionOf, type ResourceRegistry, type ResourceType, resourceKey } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { ApiError, errors, success } from './status.js';
import type { DeleteOptions, Store, WriteContext } from './storage.js';
import type { WatchHub } from './watch.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface ResourceRequest {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  watchPath: boolean;
}

/** Returns a pod container's log text, or undefined when it has none yet. */
export type PodLogSource = (
  namespace: string,
  pod: string,
  container: string | undefined,
) => string | undefined;

/** One API request as RBAC sees it: verb, API group, resource (with subresource) and namespace. */
export interface RequestRecord {
  verb: Verb;
  group: string;
  /** `jobs`, `rlhfruns/status`. */
  resource: string;
  /** Absent for cluster-scope requests (a list or watch across namespaces, a cluster-scoped type). */
  namespace?: string;
}

export interface RouteContext {
  registry: ResourceRegistry;
  store: Store;
  watches: WatchHub;
  count: (verb: Verb, resource: string, request: RequestRecord) => void;
  podLogs: () => PodLogSource | undefined;
}

function parseResourcePath(
  registry: ResourceRegistry,
  g: string,
  v: string,
  rest: string[],
): ResourceRequest | undefined {
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && registry.find(g, v, rest[2]!)?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = rest[0] ? registry.find(g, v, rest[0]) : undefined;
  if (!type || rest.length > 3) return undefined;
  if (type.namespaced && namespace === undefined && rest.length > 1) return undefined;
  return { type, namespace, name: rest[1], subresource: rest[2], watchPath };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string, contentType: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return contentType === PatchTypes.apply ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the request body could not be decoded: ${String(e)}`);
  }
}

export async function handle(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://fake');
    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const discovery = discoveryDoc(ctx, segments, req.headers.host ?? '');
    if (discovery !== null) {
      if (discovery === undefined) throw errors.noRoute();
      send(res, 200, discovery);
      return;
    }
    const [root, ...after] = segments;
    const rr =
      root === 'api' && after[0] === 'v1'
        ? parseResourcePath(ctx.registry, '', 'v1', after.slice(1))
        : root === 'apis' && after.length >= 2
          ? parseResourcePath(ctx.registry, after[0]!, after[1]!, after.slice(2))
          : undefined;
    if (!rr) throw errors.noRoute();
    await serveResource(ctx, rr, url.searchParams, req, res);
  } catch (e) {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (e instanceof ApiError) send(res, e.code, e.status);
    else {
      const message = e instanceof Error ? e.message : String(e);
      send(res, 500, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason: 'InternalError',
        code: 500,
      });
    }
  }
}

/** null: not a discovery path; undefined: a discovery path for something not served. */
function discoveryDoc(ctx: RouteContext, s: string[], host: string): unknown {
  if (s.length === 1 && s[0] === 'version') return versionInfo;
  if (s[0] === 'api' && s.length === 1) return coreVersions(host);
  if (s[0] === 'api' && s.length === 2) return resourceList(ctx.registry, '', s[1]!);
  if (s[0] === 'apis' && s.length === 1) return groupList(ctx.registry);
  if (s[0] === 'apis' && s.length === 2) return group(ctx.registry, s[1]!);
  if (s[0] === 'apis' && s.length === 3) return resourceList(ctx.registry, s[1]!, s[2]!);
  return null;
}

function managerOf(req: IncomingMessage, query: URLSearchParams): string {
  return query.get('fieldManager') ?? (req.headers['user-agent'] ?? 'unknown').split('/')[0]!;
}

async function serveResource(
  ctx: RouteContext,
  rr: ResourceRequest,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { type, name, subresource } = rr;
  const namespace = rr.namespace ?? '';
  const method = req.method ?? 'GET';
  if (
    subresource !== undefined &&
    subresource !== 'status' &&
    !type.extraSubresources.includes(subresource)
  ) {
    throw errors.noRoute();
  }
  if (subresource === 'status' && !type.statusSubresource) throw errors.noRoute();
  const resource = `${resourceKey(type)}${subresource ? `/${subresource}` : ''}`;
  const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
  const body = parseBody(await readBody(req), contentType);
  const write: WriteContext = { manager: managerOf(req, query), verb: method.toLowerCase() };
  if (subresource === 'status') write.subresource = 'status';
  const count = (verb: Verb) => {
    write.verb = verb;
    ctx.count(verb, resource, {
      verb,
      group: type.group,
      resource: `${type.plural}${subresource ? `/${subresource}` : ''}`,
      ...(rr.namespace ? { namespace: rr.namespace } : {}),
    });
  };

  if (method === 'GET' && (rr.watchPath || query.get('watch') === 'true' || query.get('watch') === '1')) {
    count('watch');
    const fieldSelector = [query.get('fieldSelector'), name ? `metadata.name=${name}` : undefined]
      .filter(Boolean)
      .join(',');
    const timeout = query.get('timeoutSeconds');
    ctx.watches.serve(
      {
        type,
        namespace: rr.namespace,
        resourceVersion: query.get('resourceVersion') ?? undefined,
        labelSelector: parseLabelSelector(query.get('labelSelector') ?? undefined),
        fieldSelector: parseFieldSelector(fieldSelector || undefined),
        timeoutSeconds: timeout ? Number(timeout) : undefined,
        allowWatchBookmarks: query.get('allowWatchBookmarks') === 'true',
      },
      res,
    );
    return;
  }
  if (method === 'GET' && name === undefined) {
    count('list');
    const limit = query.get('limit');
    const list = ctx.store.list(type, rr.namespace, {
      labelSelector: parseLabelSelector(query.get('labelSelector') ?? undefined),
      fieldSelector: parseFieldSelector(query.get('fieldSelector') ?? undefined),
      ...(query.get('resourceVersion') ? { resourceVersion: query.get('resourceVersion')! } : {}),
      ...(query.get('resourceVersionMatch')
        ? { resourceVersionMatch: query.get('resourceVersionMatch')! }
        : {}),
      ...(limit ? { limit: Number(limit) } : {}),
      ...(query.get('continue') ? { continueToken: query.get('continue')! } : {}),
    });
    const metadata: Record<string, string> = { resourceVersion: list.resourceVersion };
    if (list.continue) metadata.continue = list.continue;
    send(res, 200, { apiVersion: apiVersionOf(type), kind: type.listKind, metadata, items: list.items });
    return;
  }
  if (method === 'GET' && subresource === 'log') {
    count('get');
    ctx.store.get(type, namespace, name!);
    const text = ctx.podLogs()?.(namespace, name!, query.get('container') ?? undefined);
    if (text === undefined)
      throw errors.badRequest(`container in pod "${name}" is waiting to start: ContainerCreating`);
    const tail = query.get('tailLines');
    const out = tail ? tailLines(text, Number(tail)) : text;
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(out);
    return;
  }
  if (method === 'GET') {
    count('get');
    send(res, 200, ctx.store.get(type, namespace, name!));
    return;
  }
  if (method === 'POST' && name === undefined) {
    count('create');
    send(res, 201, ctx.store.create(type, namespace, body, write));
    return;
  }
  if (method === 'PUT' && name !== undefined) {
    count('update');
    send(res, 200, ctx.store.update(type, namespace, name, body, write));
    return;
  }
  if (method === 'PATCH' && name !== undefined) {
    count('patch');
    if (contentType === PatchTypes.apply && !query.get('fieldManager')) {
      throw errors.invalid(type, name, [
        {
          reason: 'FieldValueRequired',
          message: 'Required value: is required for apply patch',
          field: 'fieldManager',
        },
      ]);
    }
    const existed = ctx.store.find(type, namespace, name) !== undefined;
    const patched = ctx.store.patch(type, namespace, name, contentType, body, {
      ...write,
      force: query.get('force') === 'true',
    });
    send(res, existed ? 200 : 201, patched);
    return;
  }
  if (method === 'DELETE' && name !== undefined) {
    count('delete');
    const opts = deleteOptions(body, query);
    const { object, removed } = ctx.store.delete(type, namespace, name, opts, write);
    const meta = object.metadata as { uid: string };
    send(res, 200, removed && !returnsObjectOnDelete(type) ? success(type, name, meta.uid) : object);
    return;
  }
  if (method === 'DELETE') {
    count('deletecollection');
    const opts = deleteOptions(body, query);
    const list = ctx.store.list(type, rr.namespace, {
      labelSelector: parseLabelSelector(query.get('labelSelector') ?? undefined),
      fieldSelector: parseFieldSelector(query.get('fieldSelector') ?? undefined),
    });
    for (const item of list.items) {
      const m = item.metadata as { name: string; namespace?: string };
      ctx.store.delete(type, m.namespace ?? '', m.name, opts, write);
    }
    send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
    return;
  }
  throw errors.methodNotAllowed();
}

function deleteOptions(body: unknown, query: URLSearchParams): DeleteOptions {
  const b = (body ?? {}) as DeleteOptions & { orphanDependents?: boolean };
  const opts: DeleteOptions = {};
  const policy = query.get('propagationPolicy') ?? b.propagationPolicy;
  if (policy) {
    if (policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') {
      throw errors.badRequest(`propagationPolicy: Unsupported value: "${policy}"`);
    }
    opts.propagationPolicy = policy;
  } else if (b.orphanDependents !== undefined || query.get('orphanDependents') !== null) {
    const orphan = b.orphanDependents ?? query.get('orphanDependents') === 'true';
    opts.propagationPolicy = orphan ? 'Orphan' : 'Background';
  }
  if (b.preconditions) opts.preconditions = b.preconditions;
  return opts;
}

function tailLines(text: string, n: number): string {
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  return lines.slice(-n).join('\n') + (trailing === '' ? '\n' : '');
}
