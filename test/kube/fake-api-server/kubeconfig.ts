/** KubeConfigs pointing at a fake server: plain http, no auth. */
import { writeFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

function options(server: { url: string }, namespace: string) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server: server.url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: {} }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace } }],
    'current-context': 'fake',
  };
}

/** A client-node KubeConfig for `server` (its current context's namespace is `namespace`). */
export function fakeKubeConfig(server: { url: string }, namespace = 'default'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(stringify(options(server, namespace)));
  return kc;
}

/** Writes a kubeconfig file for child processes (`KUBECONFIG=<path>`); returns the path. */
export function writeKubeConfig(server: { url: string }, path: string, namespace = 'default'): string {
  writeFileSync(path, stringify(options(server, namespace)));
  return path;
}
