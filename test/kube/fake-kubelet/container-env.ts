/** A container's environment and command line, resolved the way the kubelet does. */
import type { JsonObject } from '../fake-api-server/index.js';
import { ContainerConfigError } from './container-config-error.js';
import {
  type ContainerResources,
  type ResourceFieldSelector,
  resourceFieldValue,
} from './resource-field-ref.js';

export { ContainerConfigError };

/**
 * Where Secrets and ConfigMaps are read from: the fake server's in-process client, or the real-API-server
 * node agent's objects fetched for the pod before it starts (so this code stays synchronous and shared).
 */
export interface ObjectLookup {
  find(resource: 'secrets' | 'configmaps', namespace: string, name: string): JsonObject | undefined;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: ResourceFieldSelector;
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

interface EnvFrom {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFrom[];
  resources?: ContainerResources;
}

/** The downward API's fieldRef for env and downwardAPI volumes. */
export function fieldRef(pod: JsonObject, path: string): string {
  const meta = pod.metadata as {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  const spec = (pod.spec ?? {}) as { nodeName?: string; serviceAccountName?: string };
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed) return (keyed[1] === 'labels' ? meta.labels : meta.annotations)?.[keyed[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return meta.name;
    case 'metadata.namespace':
      return meta.namespace;
    case 'metadata.uid':
      return meta.uid;
    case 'spec.nodeName':
      return spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return spec.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.hostIP':
      return '127.0.0.1';
    default:
      throw new ContainerConfigError(`unsupported fieldRef fieldPath "${path}"`);
  }
}

function dataOf(
  api: ObjectLookup,
  kind: 'secrets' | 'configmaps',
  namespace: string,
  name: string,
  optional: boolean,
) {
  const obj = api.find(kind, namespace, name);
  if (!obj) {
    if (optional) return undefined;
    throw new ContainerConfigError(`${kind === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
  }
  const data = (obj.data ?? {}) as Record<string, string>;
  if (kind === 'configmaps') return data;
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/** `$(VAR)` references expand from variables defined so far; `$$(VAR)` escapes. */
export function expand(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return env[name!] ?? m;
  });
}

/** The container's own variables (envFrom first, then env), as a map. */
export function containerEnv(
  api: ObjectLookup,
  pod: JsonObject,
  container: Container,
): Record<string, string> {
  const namespace = (pod.metadata as { namespace: string }).namespace;
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const data = dataOf(
      api,
      from.configMapRef ? 'configmaps' : 'secrets',
      namespace,
      ref.name,
      ref.optional === true,
    );
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const v of container.env ?? []) {
    if (v.value !== undefined) env[v.name] = expand(v.value, env);
    else if (v.valueFrom?.fieldRef) env[v.name] = fieldRef(pod, v.valueFrom.fieldRef.fieldPath);
    else if (v.valueFrom?.resourceFieldRef) {
      env[v.name] = resourceFieldValue(pod, container, v.name, v.valueFrom.resourceFieldRef);
    } else if (v.valueFrom?.secretKeyRef || v.valueFrom?.configMapKeyRef) {
      const ref = (v.valueFrom.secretKeyRef ?? v.valueFrom.configMapKeyRef)!;
      const kind = v.valueFrom.secretKeyRef ? 'secrets' : 'configmaps';
      const data = dataOf(api, kind, namespace, ref.name, ref.optional === true);
      const value = data?.[ref.key];
      if (value === undefined && ref.optional !== true) {
        throw new ContainerConfigError(
          `couldn't find key ${ref.key} in ${kind === 'secrets' ? 'Secret' : 'ConfigMap'} ${namespace}/${ref.name}`,
        );
      }
      if (value !== undefined) env[v.name] = value;
    } else env[v.name] = '';
  }
  return env;
}

export interface CommandMapping {
  /** Entrypoints by image (`repo/name:tag`, `repo/name`, or `name`) for containers without `command`. */
  entrypoints: Record<string, string[]>;
  /** Used when no image entrypoint matches. */
  defaultEntrypoint: string[] | undefined;
  /** Replacements for the first word of a command line (`rlhf` -> the repo's CLI). */
  commands: Record<string, string[]>;
}

function imageEntrypoint(image: string | undefined, map: CommandMapping): string[] | undefined {
  if (image) {
    const untagged = image.replace(/(@sha256:[0-9a-f]+|:[^/:]+)$/, '');
    const short = untagged.split('/').pop()!;
    for (const key of [image, untagged, short]) if (map.entrypoints[key]) return map.entrypoints[key];
  }
  return map.defaultEntrypoint;
}

/** The argv to run: command (or the image's entrypoint) + args, `$(VAR)`-expanded, first word mapped. */
export function commandLine(
  container: Container,
  env: Record<string, string>,
  map: CommandMapping,
): string[] {
  const command = container.command ?? imageEntrypoint(container.image, map);
  if (!command || command.length === 0) {
    throw new ContainerConfigError(
      `no command and no entrypoint mapped for image "${container.image ?? ''}"`,
    );
  }
  const argv = [...command, ...(container.args ?? [])].map((a) => expand(a, env));
  const mapped = map.commands[argv[0]!];
  return mapped ? [...mapped, ...argv.slice(1)] : argv;
}
