/**
 * A stand-in for cluster DNS and kube-proxy: the pod's /etc/hosts (bind-mounted over the host's) names every
 * Service in the cluster as `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local`, all
 * 127.0.0.1. Pods share the host's network (like hostNetwork pods), so a Service reaches its pod only when
 * the Service's port equals the pod's targetPort. The file is written when a pod starts, from the Services
 * that exist then: a Service created later is seen by pods started after it.
 */
import { writeFileSync } from 'node:fs';
import type { NodeApi } from './node-api.js';

interface ServiceList {
  items?: { metadata: { name: string; namespace: string } }[];
}

export async function writePodHosts(api: NodeApi, file: string, podName: string, podNamespace: string) {
  const res = await api.request('GET', '/api/v1/services');
  if (res.status !== 200) {
    throw new Error(
      `node agent: listing Services for /etc/hosts failed (${res.status}): ${JSON.stringify(res.body)}`,
    );
  }
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `127.0.0.1\t${podName}`,
  ];
  for (const svc of (res.body as ServiceList).items ?? []) {
    const { name, namespace } = svc.metadata;
    const names = [
      `${name}.${namespace}`,
      `${name}.${namespace}.svc`,
      `${name}.${namespace}.svc.cluster.local`,
    ];
    // The bare name resolves only from the Service's own namespace, as with the cluster's DNS search path.
    if (namespace === podNamespace) names.unshift(name);
    lines.push(`127.0.0.1\t${names.join(' ')}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}
