/**
 * No import cycles: not between files (a cycle means neither file can be read, tested or moved without the
 * other) and not between workspace packages (package.json dependencies). The scanner is checked on a small
 * tree with a known cycle first, so a green run here means "no cycle", not "nothing scanned".
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findCycles, formatCycle } from '../helpers/graph-cycles.js';
import { packageGraph, readWorkspace, scanImports } from '../helpers/import-graph.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sourceDirs = [
  'services/*/src',
  'services/*/bench',
  'services/*/scripts',
  'services/*/test',
  'proto/src',
];

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

const pkg = (name: string, exports: Record<string, string>, deps: string[] = []) =>
  JSON.stringify({ name, exports, dependencies: Object.fromEntries(deps.map((d) => [d, '0.1.0'])) });

test('the scanner finds a cycle through relative, type-only and package-subpath imports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'import-cycles-'));
  try {
    writeTree(dir, {
      'package.json': JSON.stringify({ workspaces: ['pkgs/*'] }),
      'pkgs/a/package.json': pkg('@t/a', { '.': './src/index.ts', './extra': './src/extra.ts' }, ['@t/b']),
      'pkgs/b/package.json': pkg('@t/b', { '.': './src/index.ts' }, ['@t/a']),
      'pkgs/a/src/index.ts': "export * from './one.js';\n",
      'pkgs/a/src/one.ts': "import type { Y } from './two.js';\nexport type X = Y;\n",
      'pkgs/a/src/two.ts':
        "export { z as Y } from '@t/b';\n// import './ghost.js' in a comment is no import\n",
      'pkgs/b/src/index.ts': "export const z = async () => (await import('@t/a/extra')).e;\n",
      'pkgs/a/src/extra.ts': "import './one.js';\nimport 'node:fs';\nexport const e = 1;\n",
      'pkgs/b/src/lonely.ts': "import '@t/a/missing';\nimport './gone.js';\n",
    });
    const packages = readWorkspace(dir);
    const graph = scanImports(dir, ['pkgs/*/src'], packages);
    assert.deepEqual(findCycles(graph.edges), [
      ['pkgs/a/src/extra.ts', 'pkgs/a/src/one.ts', 'pkgs/a/src/two.ts', 'pkgs/b/src/index.ts'],
    ]);
    assert.deepEqual(graph.unresolved, [
      { file: 'pkgs/b/src/lonely.ts', specifier: '@t/a/missing' },
      { file: 'pkgs/b/src/lonely.ts', specifier: './gone.js' },
    ]);
    assert.deepEqual(findCycles(packageGraph(packages)), [['@t/a', '@t/b']]);

    // The same tree with the type moved out of the loop has no cycle left.
    writeTree(dir, { 'pkgs/a/src/one.ts': 'export type X = number;\n' });
    assert.deepEqual(findCycles(scanImports(dir, ['pkgs/*/src'], packages).edges), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('findCycles reports a self-import and ignores a diamond', () => {
  const graph = new Map([
    ['a', ['b', 'c']],
    ['b', ['d']],
    ['c', ['d']],
    ['d', []],
    ['e', ['e']],
  ]);
  assert.deepEqual(findCycles(graph), [['e']]);
  assert.equal(formatCycle(['x', 'y']), 'x -> y -> x');
});

test('no import cycles between the source files of the workspace', () => {
  const graph = scanImports(root, sourceDirs, readWorkspace(root));
  // The scan must have seen the repo, including a subpath import across packages.
  assert.ok(graph.edges.size > 300, `only ${graph.edges.size} files scanned`);
  assert.ok(
    graph.edges.get('services/cli/src/commands/bench.ts')?.has('services/ml-engine/bench/engine-bench.ts'),
    'the scan should follow `@rlhf/ml-engine/bench` to services/ml-engine/bench/engine-bench.ts',
  );
  const cycles = findCycles(graph.edges);
  assert.deepEqual(
    cycles.map(formatCycle),
    [],
    'import cycles (move what both files need, often a type, into a file of its own that imports neither)',
  );
});

test('every relative and workspace import resolves to a file', () => {
  const { unresolved } = scanImports(root, sourceDirs, readWorkspace(root));
  assert.deepEqual(
    unresolved.map((u) => `${u.file}: ${u.specifier}`),
    [],
    "imports with no file (a workspace subpath must be listed in that package.json's exports)",
  );
});

test('the workspace packages depend on each other without a cycle (package.json)', () => {
  const packages = readWorkspace(root);
  assert.ok(packages.length > 10, `only ${packages.length} workspace packages found`);
  assert.deepEqual(
    findCycles(packageGraph(packages)).map(formatCycle),
    [],
    'package dependency cycles (a package that needs another one back should share a third package)',
  );
});
