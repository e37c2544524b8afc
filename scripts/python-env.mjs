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
import { join } from 'node:path';
import { basePython, cachedVenv, stepRunner, venvDir } from './venv-cache.mjs';

export const pins = [
  'torch==2.15.0',
  'transformers==5.25.0',
  'tokenizers==0.23.3',
  'safetensors==0.8.0',
  'numpy==2.4.6',
  'jinja2==3.1.6',
];

const { fail, run } = stepRunner('python-env');
cachedVenv(venvDir('venv', pins), { pins }, (python) => {
  const base = basePython(fail);
  const venv = join(python, '..', '..');
  run(`creating the venv (${base} -m venv ${venv})`, base, ['-m', 'venv', venv]);
  const pip = [join(venv, 'bin', 'pip'), 'install', '--disable-pip-version-check', '--quiet'];
  run(`pip install ${pins.join(' ')}`, pip[0], [...pip.slice(1), ...pins]);
  run('importing the installed libraries', python, [
    '-c',
    'import torch, transformers, tokenizers, safetensors, numpy; torch.ones(1) @ torch.ones(1)',
  ]);
});
