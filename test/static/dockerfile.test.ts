/**
 * The images cannot be built here (no Docker engine), so this checks what would break them silently:
 * the build context keeps what `npm ci` needs, both images run as a non-root user with `rlhf` as the entry
 * point, and the CUDA image asks onnxruntime-node's installer for a manifest that the installed version
 * actually has for linux/x64 (an upgrade that renames it fails here, not in a release build).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (f: string): string => readFileSync(join(root, f), 'utf8');

test('both Dockerfiles: npm ci with the repository .npmrc, non-root user, ENTRYPOINT rlhf', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const needed of ['.npmrc', 'package.json', 'package-lock.json', 'services', 'proto'])
    assert.ok(!ignored.includes(needed), `.dockerignore drops ${needed}`);
  for (const file of ['Dockerfile', 'Dockerfile.cuda']) {
    const text = read(file);
    assert.match(text, /^FROM node:20-bookworm-slim|^ARG NODE_IMAGE=node:20-bookworm-slim$/m, file);
    assert.match(text, /npm ci --omit=dev/, `${file}: npm ci`);
    assert.match(text, /^USER 10001:10001$/m, `${file}: non-root user (the chart's runAsUser)`);
    assert.match(text, /^ENTRYPOINT \["rlhf"\]$/m, file);
    const user = text.split('\n').findLast((l) => l.startsWith('USER '));
    assert.equal(user, 'USER 10001:10001', `${file}: the last USER is not root`);
  }
  const chartValues = read('charts/rlhf/values.yaml');
  assert.match(chartValues, /runAsUser: 10001/, 'chart and image agree on the uid');
});

test('Dockerfile.cuda installs a CUDA manifest onnxruntime-node knows for linux/x64', () => {
  const text = read('Dockerfile.cuda');
  const flag = /ONNXRUNTIME_NODE_INSTALL=(\S+) node node_modules\/onnxruntime-node\/script\/install\.js/.exec(
    text,
  )?.[1];
  assert.ok(flag, 'Dockerfile.cuda runs the onnxruntime-node installer with ONNXRUNTIME_NODE_INSTALL');
  const require = createRequire(join(root, 'package.json'));
  const metadata = require('onnxruntime-node/script/install-metadata.js') as {
    requirements: Record<string, string[]>;
  };
  assert.ok(
    metadata.requirements['linux/x64']?.includes(flag),
    `onnxruntime-node has no ${flag} manifest for linux/x64 (has ${metadata.requirements['linux/x64']})`,
  );
  assert.match(text, /libonnxruntime_providers_cuda\.so/, 'the build checks the provider library arrived');
});
