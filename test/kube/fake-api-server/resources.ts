/** The resource types the fake server serves: the built-ins a controller touches, plus CRD-registered ones. */

export type JsonObject = Record<string, unknown>;

export interface ResourceType {
  group: string; // '' for core
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  /** PUT/PATCH on the main resource ignore .status; .../status changes only .status. */
  statusSubresource: boolean;
  /** metadata.generation is maintained (bumped on spec changes). */
  hasGeneration: boolean;
  /** Custom resources: PUT needs metadata.resourceVersion, strategic merge patch is refused. */
  custom: boolean;
  /** openAPIV3Schema of a CRD version, for `default`s. */
  schema?: JsonObject;
  /** Extra subresources named in discovery (e.g. pods/log). */
  extraSubresources: string[];
}

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** Registry key: `pods`, `jobs.batch`, `rlhfruns.rlhf.dev`. */
export function resourceKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  opts: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version,
    plural,
    singular: kind.toLowerCase(),
    kind,
    listKind: `${kind}List`,
    namespaced: true,
    shortNames: [],
    statusSubresource: false,
    hasGeneration: false,
    custom: false,
    extraSubresources: [],
    ...opts,
  };
}

export const builtinTypes: ResourceType[] = [
  builtin('', 'v1', 'Namespace', 'namespaces', {
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
  }),
  builtin('', 'v1', 'Pod', 'pods', {
    shortNames: ['po'],
    statusSubresource: true,
    hasGeneration: true,
    extraSubresources: ['log'],
  }),
  builtin('', 'v1', 'Event', 'events', { shortNames: ['ev'] }),
  builtin('', 'v1', 'Secret', 'secrets'),
  builtin('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
  builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'] }),
  builtin('', 'v1', 'Service', 'services', { shortNames: ['svc'], statusSubresource: true }),
  builtin('apps', 'v1', 'Deployment', 'deployments', {
    shortNames: ['deploy'],
    statusSubresource: true,
    hasGeneration: true,
  }),
  builtin('batch', 'v1', 'Job', 'jobs', { statusSubresource: true, hasGeneration: true }),
  builtin('coordination.k8s.io', 'v1', 'Lease', 'leases'),
  builtin('events.k8s.io', 'v1', 'Event', 'events', { shortNames: ['ev'] }),
  builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', {
    namespaced: false,
    shortNames: ['crd', 'crds'],
    statusSubresource: true,
    hasGeneration: true,
  }),
];

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  subresources?: { status?: unknown };
  schema?: { openAPIV3Schema?: JsonObject };
}

interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: { plural: string; singular?: string; kind: string; listKind?: string; shortNames?: string[] };
  versions: CrdVersion[];
}

/** The resource types (one per served version) a CustomResourceDefinition object declares. */
export function typesFromCrd(crd: JsonObject): ResourceType[] {
  const spec = crd.spec as CrdSpec | undefined;
  if (!spec?.group || !spec.names?.plural || !spec.names.kind || !Array.isArray(spec.versions)) {
    throw new Error('CRD needs spec.group, spec.names.plural, spec.names.kind and spec.versions');
  }
  return spec.versions
    .filter((v) => v.served !== false)
    .map((v) => {
      const type: ResourceType = {
        group: spec.group,
        version: v.name,
        plural: spec.names.plural,
        singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
        kind: spec.names.kind,
        listKind: spec.names.listKind ?? `${spec.names.kind}List`,
        namespaced: spec.scope !== 'Cluster',
        shortNames: spec.names.shortNames ?? [],
        statusSubresource: v.subresources?.status !== undefined,
        hasGeneration: true,
        custom: true,
        extraSubresources: [],
      };
      if (v.schema?.openAPIV3Schema) type.schema = v.schema.openAPIV3Schema;
      return type;
    });
}

/** The CRD's conventional name (`<plural>.<group>`), which the apiserver requires as metadata.name. */
export function crdName(crd: JsonObject): string {
  const spec = crd.spec as CrdSpec;
  return `${spec.names.plural}.${spec.group}`;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Applies structural-schema `default`s the way the apiserver does: missing fields of present objects. */
export function applySchemaDefaults(value: unknown, schema: JsonObject | undefined): unknown {
  if (!schema) return value;
  if (isObject(value)) {
    const props = schema.properties;
    if (isObject(props)) {
      for (const [key, sub] of Object.entries(props)) {
        if (!isObject(sub)) continue;
        if (value[key] === undefined && sub.default !== undefined) value[key] = structuredClone(sub.default);
        if (value[key] !== undefined) value[key] = applySchemaDefaults(value[key], sub);
      }
    }
    const extra = schema.additionalProperties;
    if (isObject(extra)) {
      for (const key of Object.keys(value)) {
        if (isObject(props) && key in props) continue;
        value[key] = applySchemaDefaults(value[key], extra);
      }
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    for (let i = 0; i < value.length; i++) value[i] = applySchemaDefaults(value[i], schema.items);
  }
  return value;
}

/** All served types, looked up by group/version/plural. */
export class ResourceRegistry {
  private readonly types = new Map<string, ResourceType>();

  constructor(initial: ResourceType[] = builtinTypes) {
    for (const t of initial) this.add(t);
  }

  add(type: ResourceType): void {
    this.types.set(`${type.group}/${type.version}/${type.plural}`, type);
  }

  remove(group: string, plural: string): void {
    for (const [key, t] of this.types) if (t.group === group && t.plural === plural) this.types.delete(key);
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.get(`${group}/${version}/${plural}`);
  }

  /** By `pods`, `jobs.batch`, `rlhfruns.rlhf.dev` (first served version), or an explicit `group/version/plural`. */
  byName(name: string): ResourceType | undefined {
    for (const t of this.types.values()) {
      if (resourceKey(t) === name || `${t.group}/${t.version}/${t.plural}` === name) return t;
    }
    return undefined;
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }
}
