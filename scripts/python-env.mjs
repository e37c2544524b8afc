#!/usr/bin/env node
// Puts a Python virtual environment with Hugging Face's reference libraries (torch, transformers,
// tokenizers, safetensors, numpy) in the user's cache, for the tests that compare the engine with them:
// $RLHF_TOOLS_CACHE (default $XDG_CACHE_HOME/rlhf-tools, else ~/.cache/rlhf-tools)/venv-<digest of the
// pins>, so every checkout on a machine (a CI clone included) shares one build of the same pins. The
// packages are pinned and come from PyPI through pip.
//
// Size: on Linux x86_64 PyPI's torch wheel (540 MB) requires CUDA packages (nvidia-*, triton; about 2.5 GB
// more) even on a machine without a GPU, and `import torch` fails without them (it preloads libcublasLt),
// so the whole set is installed: about 3 GB downloaded, 5.6 GB on disk. PyPI has no CPU-only torch wheel.
//
// Idempotent and cached: a stamp file in the venv records the pins it was built with; when it matches,
// the script only prints the interpreter's path (well under a second). A failure names the step that
// failed and ends with pip's own last lines.
//
// Usage: node scripts/python-env.mjs    (prints the venv's python path on stdout)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const pins = [
  'torch==2.15.0',
  'transformers==5.25.0',
  'tokenizers==0.23.3',
  'safetensors==0.8.0',
  'numpy==2.4.6',
  'jinja2==3.1.6',
];

const cacheRoot =
  process.env.RLHF_TOOLS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rlhf-tools');
const venv = join(
  cacheRoot,
  `venv-${createHash('sha256').update(pins.join('\n')).digest('hex').slice(0, 12)}`,
);
const python = join(venv, 'bin', 'python');
const stampFile = join(venv, 'rlhf-stamp.json');
const stamp = JSON.stringify({ pins });

function fail(step, detail) {
  const tail = `${detail}`.trim().split('\n').slice(-15).join('\n');
  console.error(`python-env: ${step} failed${tail ? `:\n${tail}` : ''}`);
  process.exit(1);
}

function run(step, cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, PIP_PROGRESS_BAR: 'off' } });
  if (r.error) fail(step, `${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(step, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const cached = existsSync(python) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
if (!cached) {
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
  // A venv built with other pins (or half-built) is rebuilt from scratch, so no stale package survives.
  rmSync(venv, { recursive: true, force: true });
  run(`creating the venv (${base} -m venv ${venv})`, base, ['-m', 'venv', venv]);
  const pip = [join(venv, 'bin', 'pip'), 'install', '--disable-pip-version-check', '--quiet'];
  run(`pip install ${pins.join(' ')}`, pip[0], [...pip.slice(1), ...pins]);
  run('importing the installed libraries', python, [
    '-c',
    'import torch, transformers, tokenizers, safetensors, numpy; torch.ones(1) @ torch.ones(1)',
  ]);
  writeFileSync(stampFile, stamp);
}
process.stdout.write(`${python}\n`);
