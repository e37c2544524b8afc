/**
 * Each package's `src/` holds the library and the processes it ships, and nothing else: benchmarks live in
 * `<package>/bench/`, scripts run by hand in `<package>/scripts/`, fixtures and test harnesses in
 * `<package>/test/` (or the repo's `test/`). Tests themselves may sit next to the code they test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readWorkspace, scanImports } from '../helpers/import-graph.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const packages = readWorkspace(root);
const graph = scanImports(
  root,
  ['services/*/src', 'services/*/bench', 'services/*/scripts', 'services/*/test', 'proto/src'],
  packages,
);
const isTest = (file: string) => file.endsWith('.test.ts');
const inSrc = (file: string) => /^(services\/[^/]+|proto)\/src\//.test(file);

/**
 * Test-only files still in src/: the float64 Llama forward pass (llama-reference.ts) that the model and
 * sampling tests compare the ONNX graphs against. The list fails once an entry is used by the library.
 */
const testOnlyInSrc = new Set(['services/ml-engine/src/model/llama-reference.ts']);

/** The package a repo-relative file belongs to, e.g. `services/ml-engine`. */
const packageOf = (file: string) =>
  file
    .split('/')
    .slice(0, file.startsWith('services/') ? 2 : 1)
    .join('/');

test('library code in src/ imports no test or script file, and benchmarks only of another package', () => {
  const wrong: string[] = [];
  for (const [file, targets] of graph.edges) {
    if (!inSrc(file) || isTest(file)) continue;
    for (const target of targets) {
      // `rlhf bench` runs a package's benchmarks through that package's `bench` export.
      const otherPackageBench =
        /^services\/[^/]+\/bench\//.test(target) && packageOf(target) !== packageOf(file);
      if (!inSrc(target) && !otherPackageBench) wrong.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(
    wrong,
    [],
    'src/ must not depend on its bench/, scripts/ or test/: move the shared code into src/',
  );
});

test('every non-test file in src/ is reached from its package exports or a main.ts', () => {
  const reached = new Set<string>();
  const pending = [
    ...packages.flatMap((p) => [...p.exports.values()].map((f) => relative(root, f))).filter(inSrc),
    ...[...graph.edges.keys()].filter((f) => inSrc(f) && f.endsWith('/main.ts')),
  ];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (reached.has(file)) continue;
    reached.add(file);
    for (const target of graph.edges.get(file) ?? []) if (inSrc(target)) pending.push(target);
  }
  assert.ok(reached.size > 200, `only ${reached.size} files reached: the walk did not start`);
  const unreached = [...graph.edges.keys()].filter(
    (f) => inSrc(f) && !isTest(f) && !reached.has(f) && !testOnlyInSrc.has(f),
  );
  assert.deepEqual(
    unreached,
    [],
    'files only tests, benchmarks or scripts use: move them to <package>/test/, bench/ or scripts/',
  );
  for (const f of testOnlyInSrc)
    assert.ok(!reached.has(f), `${f} is library code now: drop it from the list`);
});

test('stray isolate-*.log profiles are neither committed nor committable', () => {
  const tracked = spawnSync('git', ['ls-files', '*isolate-*'], { cwd: root, encoding: 'utf8' });
  assert.equal(tracked.status, 0, tracked.stderr);
  assert.equal(tracked.stdout, '', 'git rm --cached the isolate-*.log files (V8 --prof output)');
  const rules = readFileSync(join(root, '.gitignore'), 'utf8').split('\n');
  assert.ok(rules.includes('isolate-*.log'), '.gitignore should list isolate-*.log');
});
