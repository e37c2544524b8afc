/**
 * Every environment variable a service reads is explained in `rlhf serve --help`, so a new tuning knob cannot
 * go undocumented (RLHF_EXIT_WITH_PARENT is the local launcher's own wiring, not a setting).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const serviceDirs = [
  'ml-engine',
  'platform',
  'service-kit',
  'policy-generator',
  'reward-model',
  'preference-model',
  'dpo-trainer',
];
const internal = new Set(['RLHF_EXIT_WITH_PARENT']);

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(path)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

test('rlhf serve --help explains every RLHF_* environment variable the services read', async () => {
  const read = new Set<string>();
  for (const d of serviceDirs)
    for (const file of await sources(join(root, 'services', d, 'src')))
      for (const m of (await readFile(file, 'utf8')).matchAll(/\benv\.(RLHF_[A-Z0-9_]+)/g))
        if (!internal.has(m[1] as string)) read.add(m[1] as string);
  assert.ok(read.has('RLHF_ORT_THREADS') && read.has('RLHF_GENERATE_MAX_BATCH'), [...read].join(' '));
  const help = await runCli(['serve', '--help']);
  assert.equal(help.code, 0, help.stderr);
  const missing = [...read].filter((v) => !help.stdout.includes(v));
  assert.deepEqual(
    missing,
    [],
    `document these in services/cli/src/commands/serve.ts: ${missing.join(', ')}`,
  );
});
