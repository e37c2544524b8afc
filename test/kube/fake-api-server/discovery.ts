/** Discovery documents: /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>, /version. */
import type { JsonObject, ResourceRegistry, ResourceType } from './resources.js';

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function resourceEntries(types: ResourceType[]): JsonObject[] {
  return types.flatMap((t) => {
    const main: JsonObject = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs,
      storageVersionHash: '',
    };
    if (t.shortNames.length > 0) main.shortNames = t.shortNames;
    const subs: JsonObject[] = [];
    if (t.statusSubresource) {
      subs.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
    for (const sub of t.extraSubresources) {
      subs.push({
        name: `${t.plural}/${sub}`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get'],
      });
    }
    return [main, ...subs];
  });
}

export function coreVersions(host: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }],
  };
}

export function resourceList(
  registry: ResourceRegistry,
  group: string,
  version: string,
): JsonObject | undefined {
  const types = registry.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: resourceEntries(types),
  };
}

function groupOf(registry: ResourceRegistry, name: string): JsonObject | undefined {
  const versions = [
    ...new Set(
      registry
        .all()
        .filter((t) => t.group === name)
        .map((t) => t.version),
    ),
  ];
  if (versions.length === 0) return undefined;
  const entries = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { kind: 'APIGroup', apiVersion: 'v1', name, versions: entries, preferredVersion: entries[0] };
}

export function group(registry: ResourceRegistry, name: string): JsonObject | undefined {
  return groupOf(registry, name);
}

export function groupList(registry: ResourceRegistry): JsonObject {
  const names = [...new Set(registry.all().map((t) => t.group))].filter((g) => g !== '').sort();
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: names.map((n) => {
      const g = groupOf(registry, n)!;
      delete g.kind;
      delete g.apiVersion;
      return g;
    }),
  };
}

export const versionInfo = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.0-fake',
  gitCommit: 'fake',
  gitTreeState: 'clean',
  buildDate: '2024-08-13T00:00:00Z',
  goVersion: 'go1.22.5',
  compiler: 'gc',
  platform: 'linux/amd64',
};
