/** Static checks run as tests, so `npm test` is the whole gate: the type checker and the linter. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name: string): string => `${root}node_modules/.bin/${name}`;

test('TypeScript type-checks the whole repo (strict)', () => {
  const r = spawnSync(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc found errors:\n${r.stdout}${r.stderr}`);
});

test('biome lint and format are clean', () => {
  const r = spawnSync(bin('biome'), ['check', '--max-diagnostics=50', '.'], { cwd: root, encoding: 'utf8' });
  assert.equal(
    r.status,
    0,
    `biome found problems (fix with: npx biome check --write .):\n${r.stdout}${r.stderr}`,
  );
});
