// What the scripts that build cached Python environments share (python-env.mjs, python-trl-env.mjs,
// vllm-env.mjs): where the cache is, how a venv is keyed by its pins, how a step runs and fails, and the
// stamp that makes a second call print the interpreter's path and nothing else.
//
// The cache root is $RLHF_TOOLS_CACHE, else $XDG_CACHE_HOME/rlhf-tools, else ~/.cache/rlhf-tools, shared by
// every checkout on a machine (a CI clone included). A venv's directory name carries a digest of its pins,
// and a stamp file in it records them: a venv built with other pins, or half-built, is rebuilt from scratch.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const cacheRoot =
  process.env.RLHF_TOOLS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rlhf-tools');

/** `<cacheRoot>/<prefix>-<12 hex of the digest of the lines>`. */
export function venvDir(prefix, lines, root = cacheRoot) {
  return join(root, `${prefix}-${createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 12)}`);
}

/** A tool's step runner: a failed step exits naming the step, with the last lines of what it printed. */
export function stepRunner(tool) {
  const fail = (step, detail) => {
    const tail = `${detail}`.trim().split('\n').slice(-15).join('\n');
    console.error(`${tool}: ${step} failed${tail ? `:\n${tail}` : ''}`);
    process.exit(1);
  };
  const run = (step, cmd, args) => {
    const r = spawnSync(cmd, args, {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, PIP_PROGRESS_BAR: 'off' },
    });
    if (r.error) fail(step, `${cmd}: ${r.error.message}`);
    if (r.status !== 0) fail(step, `${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  return { fail, run };
}

/** A Python 3.10 or newer to build venvs with: $PYTHON, else python3. */
export function basePython(fail) {
  const base = process.env.PYTHON ?? 'python3';
  const version = spawnSync(base, ['-c', 'import sys; print(sys.version_info >= (3, 10))'], {
    encoding: 'utf8',
  });
  if (version.error || version.stdout.trim() !== 'True') {
    fail(
      'finding Python 3.10 or newer',
      `${base} is missing or too old (set PYTHON to another interpreter): ${version.error?.message ?? version.stdout}`,
    );
  }
  return base;
}

/**
 * The venv at `venv` with the interpreter at bin/python: built by `build(python)` unless its stamp matches,
 * after removing whatever a build with other pins (or a killed one) left. Prints the interpreter's path.
 */
export function cachedVenv(venv, stamp, build) {
  const python = join(venv, 'bin', 'python');
  const stampFile = join(venv, 'rlhf-stamp.json');
  const text = JSON.stringify(stamp);
  const cached = existsSync(python) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === text;
  if (!cached) {
    rmSync(venv, { recursive: true, force: true });
    build(python);
    writeFileSync(stampFile, text);
  }
  process.stdout.write(`${python}\n`);
  return python;
}
