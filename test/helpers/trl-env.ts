/**
 * The TRL environment (scripts/python-trl-env.mjs: TRL and its dependencies layered on the reference venv)
 * for tests that run the real `trl` command line. Idempotent and cached like test/helpers/python-env.ts;
 * when the environment cannot be built the test fails with the script's message.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

let cached: string | undefined;

/** The `trl` executable of the TRL venv, building the venv on first use. */
export function trlExecutable(): string {
  if (cached !== undefined) return cached;
  const r = spawnSync(process.execPath, [`${root}scripts/python-trl-env.mjs`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`the TRL environment could not be built: ${r.stderr || r.error?.message}`);
  }
  cached = join(dirname(r.stdout.trim()), 'trl');
  return cached;
}

/** No hub, no telemetry: the TRL run must use only the files the test wrote. */
export const offlineEnv: NodeJS.ProcessEnv = {
  HF_HUB_OFFLINE: '1',
  TRANSFORMERS_OFFLINE: '1',
  HF_DATASETS_OFFLINE: '1',
  HF_HUB_DISABLE_TELEMETRY: '1',
  TOKENIZERS_PARALLELISM: 'false',
};
