#!/usr/bin/env node
// Puts a Python virtual environment with TRL (Hugging Face's DPO trainer and its `trl` command line) next to
// the reference environment of scripts/python-env.mjs, for the tests that run `trl dpo` on an exported
// policy. It is layered on the reference venv instead of repeating it: a .pth file puts the reference venv's
// site-packages on this venv's path, so pip sees torch and transformers as installed and downloads only what
// TRL adds (accelerate, datasets, pandas, pyarrow, ...); the reference pins are passed to pip as constraints
// so nothing TRL asks for can replace them. The venv is $RLHF_TOOLS_CACHE/venv-trl-<digest of both pin
// sets>; a change to either set builds a new one.
//
// Size and time, measured on the CI machine (2 cores): about 300 MB on disk and under 3 minutes to build
// (pip's download and install of the wheels below); the reference venv it needs is built first when absent.
//
// Idempotent and cached: a stamp file records the pins; when it matches, the script only prints the
// interpreter's path. A failure names the step that failed and ends with pip's own last lines.
//
// Usage: node scripts/python-trl-env.mjs    (prints the venv's python path on stdout; `trl` is beside it)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedVenv, stepRunner, venvDir } from './venv-cache.mjs';

// TRL and every package it installs beyond the reference venv, pinned, so two machines build the same set.
export const trlPins = [
  'trl==1.16.0',
  'accelerate==1.16.0',
  'datasets==5.2.0',
  'dill==0.4.1',
  'multiprocess==0.70.19',
  'pandas==3.1.2',
  'psutil==7.2.2',
  'pyarrow==26.0.1',
  'python-dateutil==4.0.0',
  'tzdata==2026.6',
  'xxhash==4.1.0',
];

const { run } = stepRunner('python-trl-env');

const here = dirname(fileURLToPath(import.meta.url));
const basePython = run('building the reference venv (scripts/python-env.mjs)', process.execPath, [
  join(here, 'python-env.mjs'),
]).trim();
const baseVenv = dirname(dirname(basePython));
// The reference venv's own stamp holds its pins: they are this venv's constraints and part of its key.
const basePins = JSON.parse(readFileSync(join(baseVenv, 'rlhf-stamp.json'), 'utf8')).pins;
const venv = venvDir('venv-trl', [...basePins, '--', ...trlPins], dirname(baseVenv));
cachedVenv(venv, { base: baseVenv, basePins, trlPins }, (python) => {
  // The same interpreter as the reference venv, so its compiled wheels (torch) load here too.
  const interpreter = run('finding the reference interpreter', basePython, [
    '-c',
    'import sys; print(sys._base_executable)',
  ]).trim();
  run(`creating the venv (${interpreter} -m venv ${venv})`, interpreter, ['-m', 'venv', venv]);
  const site = (py) =>
    run('finding site-packages', py, [
      '-c',
      'import sysconfig; print(sysconfig.get_paths()["purelib"])',
    ]).trim();
  writeFileSync(join(site(python), 'zz-rlhf-reference.pth'), `${site(basePython)}\n`);
  const constraints = join(venv, 'reference-constraints.txt');
  writeFileSync(constraints, `${basePins.join('\n')}\n`);
  run(`pip install ${trlPins.join(' ')}`, python, [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--quiet',
    '-c',
    constraints,
    ...trlPins,
  ]);
  run('importing TRL with the reference libraries', python, [
    '-c',
    'import trl, torch, transformers, accelerate, datasets; print(trl.__version__)',
  ]);
});
