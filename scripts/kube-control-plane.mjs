#!/usr/bin/env node
// Builds the real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler) of one
// pinned release from the Go module proxy, and caches the binaries keyed by version, so the tests in
// test/kube-real run against the server users meet rather than the project's fake one (test/kube).
//
// k8s.io/kubernetes is not meant to be required from outside its repository: its go.mod points every staging
// module (k8s.io/api, k8s.io/apiserver, ...) at ./staging/src, which a module zip cannot resolve. A throwaway
// module in the cache therefore requires k8s.io/kubernetes and replaces each of those staging modules with its
// published v0.<minor>.<patch>, the version the release's own staging tree was published as.
//
// etcd comes from Debian's etcd-server package (installed here when missing).
//
// Usage: node scripts/kube-control-plane.mjs [--print-dir]
//   Prints the directory holding the binaries (etcd is found on PATH or in /usr/bin). A second run with the
//   binaries cached returns at once. The first build takes a long time (see docs/KUBERNETES.md "Development");
//   it runs niced with two parallel compile jobs so a shared machine stays usable.
// Env: RLHF_KUBE_VERSION overrides the pinned release (a k8s.io/kubernetes version served by the proxy);
//   RLHF_KUBE_BUILD_JOBS the go build -p (default 2); RLHF_ETCD an etcd binary to use instead of Debian's;
//   RLHF_TOOLS_CACHE the cache root (default ~/.cache/rlhf-tools, as scripts/python-env.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// v1.35.4: the newest release whose go.mod asks for a Go this machine's go1.26 satisfies without a toolchain
// switch (it says go 1.25.0).
export const kubeVersion = process.env.RLHF_KUBE_VERSION ?? 'v1.35.4';
export const kubeBinaries = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];

// The same cache as scripts/python-env.mjs.
const cacheRoot =
  process.env.RLHF_TOOLS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rlhf-tools');

/** The directory the binaries of `version` are cached in. */
export function kubeBinDir(version = kubeVersion) {
  return join(cacheRoot, `kube-${version}`, 'bin');
}

function log(message) {
  process.stderr.write(`kube-control-plane: ${message}\n`);
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options });
  if (result.error) throw new Error(`${cmd} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

function parseVersion(version) {
  const match = /^v1\.(\d+)\.(\d+)$/.exec(version);
  if (!match) {
    throw new Error(`RLHF_KUBE_VERSION=${version}: expected a release like v1.35.4 (no pre-releases)`);
  }
  return { minor: match[1], patch: match[2] };
}

/** The staging modules k8s.io/kubernetes's go.mod replaces with ./staging/src paths. */
export function stagingModules(goMod) {
  const modules = [];
  for (const line of goMod.split('\n')) {
    const match = /^\s*(?:replace\s+)?(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\/src\/\1\s*$/.exec(line);
    if (match) modules.push(match[1]);
  }
  return modules;
}

/** The throwaway module's go.mod: kubernetes required, every staging module pinned to v0.<minor>.<patch>. */
export function buildModuleGoMod(version, kubernetesGoMod) {
  const { minor, patch } = parseVersion(version);
  const staging = stagingModules(kubernetesGoMod);
  if (staging.length === 0) {
    throw new Error(`k8s.io/kubernetes@${version}'s go.mod has no ./staging/src replace block to pin`);
  }
  const goLine = /^go\s+(\S+)/m.exec(kubernetesGoMod)?.[1] ?? '1.25.0';
  // godebug settings apply only from the main module, so the release's own defaults are carried over.
  const godebug = kubernetesGoMod.split('\n').filter((l) => /^godebug\s/.test(l));
  return [
    'module rlhf.local/kube-control-plane',
    '',
    `go ${goLine}`,
    '',
    ...godebug,
    '',
    `require k8s.io/kubernetes ${version}`,
    '',
    'replace (',
    ...staging.map((m) => `\t${m} => ${m} v0.${minor}.${patch}`),
    ')',
    '',
  ].join('\n');
}

/** -ldflags: stripped binaries whose /version reports the release, as the project's own build sets it. */
export function versionLdflags(version) {
  const { minor } = parseVersion(version);
  const buildDate = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const values = {
    gitVersion: version,
    gitMajor: '1',
    gitMinor: minor,
    gitTreeState: 'clean',
    buildDate,
  };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [key, value] of Object.entries(values)) flags.push(`-X ${pkg}.${key}=${value}`);
  }
  return flags.join(' ');
}

function goEnv(extra = {}) {
  // -mod=mod lets the throwaway module's go.sum be written as the build resolves; -p=2 because the machines
  // this runs on have two cores shared with other work.
  const goflags = [process.env.GOFLAGS ?? '', '-mod=mod', `-p=${process.env.RLHF_KUBE_BUILD_JOBS ?? '2'}`]
    .join(' ')
    .trim();
  return { ...process.env, CGO_ENABLED: '0', GOFLAGS: goflags, ...extra };
}

function haveBinaries(dir) {
  return kubeBinaries.every((b) => existsSync(join(dir, b)));
}

/** Builds (or finds cached) the control-plane binaries; returns their directory. */
export function ensureKubeBinaries(version = kubeVersion) {
  parseVersion(version);
  const binDir = kubeBinDir(version);
  if (haveBinaries(binDir)) return binDir;
  try {
    run('go', ['version']);
  } catch (err) {
    throw new Error(`building Kubernetes ${version} needs the go command on PATH: ${err.message}`);
  }
  const started = Date.now();
  const moduleDir = join(cacheRoot, `kube-${version}`, 'module');
  mkdirSync(moduleDir, { recursive: true });
  log(`resolving k8s.io/kubernetes@${version} from the Go module proxy`);
  const info = JSON.parse(
    run('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], { cwd: moduleDir, env: goEnv() }),
  );
  if (info.Error) throw new Error(`go mod download k8s.io/kubernetes@${version}: ${info.Error}`);
  writeFileSync(join(moduleDir, 'go.mod'), buildModuleGoMod(version, readFileSync(info.GoMod, 'utf8')));
  // The tools-file idiom: main packages named under a build tag that is never set, so `go mod tidy` records
  // their dependencies without the file being compiled.
  writeFileSync(
    join(moduleDir, 'tools.go'),
    [
      '//go:build tools',
      '',
      'package tools',
      '',
      'import (',
      ...kubeBinaries.map((b) => `\t_ "k8s.io/kubernetes/cmd/${b}"`),
      ')',
      '',
    ].join('\n'),
  );
  log('go mod tidy (downloads the dependency graph once into the Go module cache)');
  run('go', ['mod', 'tidy'], { cwd: moduleDir, env: goEnv({ GOFLAGS: '' }) });
  const staging = join(cacheRoot, `kube-${version}`, 'bin.partial');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const binary of kubeBinaries) {
    log(`go build ${binary} (niced; this is the long part)`);
    const t0 = Date.now();
    run(
      'nice',
      [
        '-n',
        '10',
        'go',
        'build',
        '-trimpath',
        '-ldflags',
        versionLdflags(version),
        '-o',
        join(staging, binary),
        `k8s.io/kubernetes/cmd/${binary}`,
      ],
      { cwd: moduleDir, env: goEnv() },
    );
    log(`${binary} built in ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  rmSync(binDir, { recursive: true, force: true });
  renameSync(staging, binDir);
  log(`Kubernetes ${version} built in ${Math.round((Date.now() - started) / 1000)} s into ${binDir}`);
  return binDir;
}

/** etcd's path: Debian's etcd-server, installed with apt-get when missing (the machines run as root). */
export function ensureEtcd() {
  for (const candidate of [process.env.RLHF_ETCD, '/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  log('installing Debian etcd-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'etcd-server'], { env });
  // The package starts a system etcd on the default ports; the tests run their own on free ports.
  spawnSync('systemctl', ['disable', '--now', 'etcd'], { stdio: 'ignore' });
  if (!existsSync('/usr/bin/etcd')) throw new Error('apt-get install etcd-server left no /usr/bin/etcd');
  return '/usr/bin/etcd';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const etcd = ensureEtcd();
    const dir = ensureKubeBinaries();
    process.stdout.write(`${dir}\n`);
    if (!process.argv.includes('--print-dir')) log(`etcd: ${etcd}`);
  } catch (err) {
    log(err.message);
    process.exit(1);
  }
}
