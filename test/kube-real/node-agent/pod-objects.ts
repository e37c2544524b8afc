/**
 * Reads of the objects a pod refers to (Secrets, ConfigMaps, PVCs, PVs, ServiceAccount tokens), as the node.
 * The Node authorizer allows them only once its graph knows the pod is bound here, which trails the binding
 * by a moment: a 403 is retried for a few seconds before it counts.
 */
import type { JsonObject } from '../../kube/fake-api-server/index.js';
import type { ObjectLookup } from '../../kube/fake-kubelet/container-env.js';
import type { ApiResponse, NodeApi } from './node-api.js';

export class PodConfigError extends Error {}

const graphLagMs = 10_000;

export async function nodeRequest(
  api: NodeApi,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResponse> {
  const deadline = Date.now() + graphLagMs;
  for (;;) {
    const res = await api.request(method, path, body);
    if (res.status !== 403 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A namespaced object, or undefined when it does not exist (optional references). */
export async function getObject(
  api: NodeApi,
  namespace: string,
  resource: 'secrets' | 'configmaps' | 'persistentvolumeclaims',
  name: string,
): Promise<JsonObject | undefined> {
  const res = await nodeRequest(api, 'GET', `/api/v1/namespaces/${namespace}/${resource}/${name}`);
  if (res.status === 200) return res.body as JsonObject;
  if (res.status === 404) return undefined;
  throw new PodConfigError(
    `reading ${resource} ${namespace}/${name}: ${res.status} ${JSON.stringify(res.body)}`,
  );
}

interface EnvSources {
  env?: { valueFrom?: { secretKeyRef?: { name: string }; configMapKeyRef?: { name: string } } }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
}

/** Every Secret and ConfigMap the pod's containers take variables from, fetched once, for containerEnv. */
export async function envObjects(api: NodeApi, pod: JsonObject): Promise<ObjectLookup> {
  const namespace = (pod.metadata as { namespace: string }).namespace;
  const spec = pod.spec as { containers: EnvSources[]; initContainers?: EnvSources[] };
  const wanted = new Set<string>();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const v of c.env ?? []) {
      if (v.valueFrom?.secretKeyRef) wanted.add(`secrets/${v.valueFrom.secretKeyRef.name}`);
      if (v.valueFrom?.configMapKeyRef) wanted.add(`configmaps/${v.valueFrom.configMapKeyRef.name}`);
    }
    for (const f of c.envFrom ?? []) {
      if (f.secretRef) wanted.add(`secrets/${f.secretRef.name}`);
      if (f.configMapRef) wanted.add(`configmaps/${f.configMapRef.name}`);
    }
  }
  const found = new Map<string, JsonObject>();
  for (const key of wanted) {
    const [resource, name] = key.split('/') as ['secrets' | 'configmaps', string];
    const obj = await getObject(api, namespace, resource, name);
    if (obj) found.set(key, obj);
  }
  return { find: (resource, _ns, name) => found.get(`${resource}/${name}`) };
}
