/**
 * A real Kubernetes control plane for tests: Debian's etcd, and kube-apiserver, kube-controller-manager and
 * kube-scheduler of the release scripts/kube-control-plane.mjs builds and caches (built on first use; see
 * docs/KUBERNETES.md "Development" for how long that takes).
 *
 * Everything is private to one test file: a temp directory holds the PKI (a CA made by openssl, the API
 * server's serving certificate for 127.0.0.1, client certificates for admin (group system:masters), the
 * controller manager and the scheduler, and the service-account signing key), etcd's data and the
 * kubeconfigs; every port is a free loopback port. Authorization is Node,RBAC, as kubeadm sets it, so the
 * controller manager and the scheduler run under their own identities and the roles Kubernetes bootstraps
 * for them, and a test that needs a lesser identity can mint one with `clientCert`.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { type KeyPair, makeCa, openssl, signLeaf } from './test-pki.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface KubeResponse {
  status: number;
  body: unknown;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  server: string;
  /** A kubeconfig for the admin user (kubectl --kubeconfig, @kubernetes/client-node loadFromFile). */
  kubeconfig: string;
  /** The cluster CA certificate file (PEM): it signs the API server's certificate and every client's. */
  ca: string;
  /** The release the API server reports at /version. */
  version: string;
  dir: string;
  /** A JSON request as admin; body objects are sent as JSON. */
  request(method: string, path: string, body?: unknown): Promise<KubeResponse>;
  /** A client certificate from the cluster CA for `user` in `groups`. */
  clientCert(user: string, groups?: string[]): { cert: string; key: string };
  /**
   * A serving certificate from the cluster CA for 127.0.0.1 and `name` (a node agent's kubelet endpoint:
   * the API server checks it against the cluster CA when it calls the node for logs).
   */
  servingCert(name: string): { cert: string; key: string };
  /** Each component's log file, for a failing test to show. */
  logs: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The directory with the three binaries, built by the script on first use (12 minutes to an hour), or
 * RLHF_KUBE_BIN_DIR when set (binaries built elsewhere, of any release).
 */
export function kubeBinDir(): string {
  if (process.env.RLHF_KUBE_BIN_DIR) return process.env.RLHF_KUBE_BIN_DIR;
  const result = spawnSync(process.execPath, [join(root, 'scripts/kube-control-plane.mjs'), '--print-dir'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.status !== 0) {
    throw new Error('could not build or find the Kubernetes binaries (node scripts/kube-control-plane.mjs)');
  }
  return result.stdout.trim();
}

function etcdBinary(): string {
  for (const candidate of [process.env.RLHF_ETCD, '/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (candidate) {
      try {
        execFileSync(candidate, ['--version'], { stdio: 'ignore' });
        return candidate;
      } catch {
        // try the next one
      }
    }
  }
  throw new Error('etcd not found: node scripts/kube-control-plane.mjs installs Debian etcd-server');
}

interface Pki {
  ca: KeyPair;
  leaf(name: string, subject: string, ext: string): KeyPair;
}

function makePki(dir: string): Pki {
  const ca = makeCa(dir, 'ca', '/CN=rlhf-test-kubernetes-ca');
  return { ca, leaf: (name, subject, ext) => signLeaf(dir, name, ca, subject, ext) };
}

function clientSubject(user: string, groups: string[]): string {
  return `${groups.map((g) => `/O=${g}`).join('')}/CN=${user}`;
}

function writeKubeconfig(path: string, server: string, ca: string, cert: string, key: string): void {
  const b64 = (file: string) => readFileSync(file).toString('base64');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: test\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${b64(ca)}`,
      'users:',
      `- name: user\n  user:\n    client-certificate-data: ${b64(cert)}\n    client-key-data: ${b64(key)}`,
      'contexts:',
      '- name: test\n  context:\n    cluster: test\n    user: user\n    namespace: default',
      'current-context: test',
      '',
    ].join('\n'),
  );
}

export interface Tls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * One JSON request over HTTPS with the given identity (an API server's answers are JSON, its health
 * endpoints plain text, kept as text). `agent` reuses connections (a node agent's many calls).
 */
export function httpsJson(
  url: string,
  tls: Tls,
  method = 'GET',
  body?: unknown,
  contentType = 'application/json',
  agent?: Agent,
): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpsRequest(
      url,
      {
        method,
        ...(agent ? { agent } : {}),
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // health endpoints answer plain text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  procs: ChildProcess[],
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead)
      throw new Error(
        `${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}) while waiting for ${what}`,
      );
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface ControlPlaneOptions {
  /** Start kube-controller-manager and kube-scheduler too (default true). */
  controllers?: boolean;
  /**
   * Admission plugins on top of NodeRestriction, e.g. OwnerReferencesPermissionEnforcement (on in some
   * distributions): a test of what a chart's RBAC must grant turns them on.
   */
  admissionPlugins?: string[];
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const controllers = options.controllers ?? true;
  const binDir = kubeBinDir();
  const etcd = etcdBinary();
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-kube-'));
  const procs: ChildProcess[] = [];
  const logs: Record<string, string> = {};

  const launch = (name: string, cmd: string, args: string[]) => {
    const logFile = join(dir, `${name}.log`);
    logs[name] = logFile;
    const out = createWriteStream(logFile);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    procs.push(child);
    return child;
  };

  const stop = async () => {
    for (const child of [...procs].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const etcdClient = await freePort();
    const etcdPeer = await freePort();
    const apiPort = await freePort();
    const cmPort = await freePort();
    const schedPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;

    const pki = makePki(dir);
    const apiserverCert = pki.leaf(
      'apiserver',
      '/CN=kube-apiserver',
      [
        'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
        'extendedKeyUsage=serverAuth',
        'keyUsage=critical,digitalSignature,keyEncipherment',
      ].join('\n'),
    );
    const clientExt = 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment';
    const admin = pki.leaf('admin', clientSubject('rlhf-test-admin', ['system:masters']), clientExt);
    // The API server's identity towards nodes (pods/log, as kubeadm's apiserver-kubelet-client).
    const kubeletClient = pki.leaf(
      'apiserver-kubelet-client',
      clientSubject('kube-apiserver-kubelet-client', ['system:masters']),
      clientExt,
    );
    const saKey = join(dir, 'sa.key');
    const saPub = join(dir, 'sa.pub');
    openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', saKey], dir);
    openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub], dir);

    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, server, pki.ca.cert, admin.cert, admin.key);

    launch('etcd', etcd, [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--logger=zap',
      '--log-level=warn',
    ]);

    launch('kube-apiserver', join(binDir, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${apiserverCert.cert}`,
      `--tls-private-key-file=${apiserverCert.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=Node,RBAC',
      `--enable-admission-plugins=${['NodeRestriction', ...(options.admissionPlugins ?? [])].join(',')}`,
      `--kubelet-client-certificate=${kubeletClient.cert}`,
      `--kubelet-client-key=${kubeletClient.key}`,
      `--kubelet-certificate-authority=${pki.ca.cert}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--profiling=false',
      '--v=1',
    ]);

    const adminTls: Tls = {
      ca: readFileSync(pki.ca.cert),
      cert: readFileSync(admin.cert),
      key: readFileSync(admin.key),
    };
    const request = (method: string, path: string, body?: unknown) =>
      httpsJson(`${server}${path}`, adminTls, method, body);

    // etcd, the API server's first start (it bootstraps RBAC roles and priority levels), on a busy machine.
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await request('GET', '/readyz')).status === 200,
      120_000,
      procs,
    );

    if (controllers) {
      const identity = (name: string, user: string) => {
        const pair = pki.leaf(name, clientSubject(user, []), clientExt);
        const path = join(dir, `${name}.kubeconfig`);
        writeKubeconfig(path, server, pki.ca.cert, pair.cert, pair.key);
        return path;
      };
      const cmConfig = identity('controller-manager', 'system:kube-controller-manager');
      const schedConfig = identity('scheduler', 'system:kube-scheduler');
      launch('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
        `--kubeconfig=${cmConfig}`,
        `--authentication-kubeconfig=${cmConfig}`,
        `--authorization-kubeconfig=${cmConfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${cmPort}`,
        `--cert-dir=${join(dir, 'cm-certs')}`,
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${pki.ca.cert}`,
        `--cluster-signing-cert-file=${pki.ca.cert}`,
        `--cluster-signing-key-file=${pki.ca.key}`,
        '--use-service-account-credentials=true',
        '--leader-elect=false',
        '--profiling=false',
        '--v=1',
      ]);
      launch('kube-scheduler', join(binDir, 'kube-scheduler'), [
        `--kubeconfig=${schedConfig}`,
        `--authentication-kubeconfig=${schedConfig}`,
        `--authorization-kubeconfig=${schedConfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${schedPort}`,
        `--cert-dir=${join(dir, 'scheduler-certs')}`,
        '--leader-elect=false',
        '--profiling=false',
        '--v=1',
      ]);
      const healthy = (port: number) => async () => (await componentHealth(port)).status === 200;
      await waitFor('kube-controller-manager /healthz', healthy(cmPort), 120_000, procs);
      await waitFor('kube-scheduler /healthz', healthy(schedPort), 120_000, procs);
    }

    const version = ((await request('GET', '/version')).body as { gitVersion?: string }).gitVersion ?? '';
    return {
      server,
      kubeconfig,
      ca: pki.ca.cert,
      version,
      dir,
      request,
      clientCert: (user, groups = []) =>
        pki.leaf(`user-${user.replace(/[^a-z0-9-]/gi, '-')}`, clientSubject(user, groups), clientExt),
      servingCert: (name) =>
        pki.leaf(
          `serving-${name.replace(/[^a-z0-9-]/gi, '-')}`,
          `/CN=${name}`,
          [
            `subjectAltName=IP:127.0.0.1,DNS:${name}`,
            'extendedKeyUsage=serverAuth',
            'keyUsage=critical,digitalSignature,keyEncipherment',
          ].join('\n'),
        ),
      logs,
      stop,
    };
  } catch (err) {
    const tails = Object.entries(logs)
      .map(([name, file]) => {
        try {
          return `--- ${name}\n${readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')}`;
        } catch {
          return '';
        }
      })
      .join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\n${tails}`);
  }
}

/**
 * /healthz of the controller manager or the scheduler: in their always-allowed paths, served with a
 * certificate they sign themselves (not from the test CA), so only reachability and the answer are checked.
 */
function componentHealth(port: number): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `https://127.0.0.1:${port}/healthz`,
      { rejectUnauthorized: false, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
