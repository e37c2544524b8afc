/**
 * The Python reference environment (torch, transformers, tokenizers from PyPI, pinned in
 * scripts/python-env.mjs) for tests that compare the engine with Hugging Face's own code. The script is
 * idempotent and cached; when it cannot build the environment the test fails with its message.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

let cached: string | undefined;

/** The venv's python, building the venv on first use. Throws with the script's own message on failure. */
export function referencePython(): string {
  if (cached !== undefined) return cached;
  const r = spawnSync(process.execPath, [`${root}scripts/python-env.mjs`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`the Python reference environment could not be built: ${r.stderr || r.error?.message}`);
  }
  cached = r.stdout.trim();
  return cached;
}

/** Runs `script` (a path relative to the repository) with the reference python; returns its stdout. */
export function runReferencePython(script: string, args: readonly string[]): string {
  const r = spawnSync(referencePython(), [`${root}${script}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // No network: the reference libraries must never reach for a hub.
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
  });
  if (r.status !== 0)
    throw new Error(`python ${script} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}
