/**
 * A nats-server with JetStream that this process starts for itself, on a free loopback port with its store
 * in a directory it owns. Used by `rlhf run` when no NATS_URL is given, and by the test harness.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { RlhfError } from '../errors.js';
import { freePort } from '../net/free-port.js';

export interface LocalNatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Process id of the server. */
  pid: number;
  stop(): Promise<void>;
}

export interface LocalNatsOptions {
  /** JetStream store directory; a fresh temporary one (removed on stop) when omitted. */
  storeDir?: string;
  port?: number;
  startTimeoutMs?: number;
  /** A nats-server config file (users, permissions, TLS); the flags above still set address, port and store. */
  configFile?: string;
  /** Off for an operator-mode config whose account has no JetStream; on by default. */
  jetstream?: boolean;
}

export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NATS_SERVER_BIN) return env.NATS_SERVER_BIN;
  const dirs = [
    ...(env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/bin',
    '/usr/local/bin',
  ];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new RlhfError('FAILED_PRECONDITION', 'nats-server is not installed', {
    field: 'NATS_URL',
    fix: 'install it (Debian: apt-get install nats-server), set NATS_SERVER_BIN, or point NATS_URL at a running server',
  });
}

/** True when something answers the NATS protocol (an INFO line) at host:port within the timeout. */
export function probeNats(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk) => done(chunk.toString('utf8').startsWith('INFO ')));
  });
}

export async function startLocalNatsServer(options: LocalNatsOptions = {}): Promise<LocalNatsServer> {
  const binary = findNatsServerBinary();
  const ownsDir = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'rlhf-nats-')));
  const port = options.port ?? (await freePort());
  const config = options.configFile ? ['-c', options.configFile] : [];
  const child: ChildProcess = spawn(
    binary,
    [
      ...config,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      ...(options.jetstream === false ? [] : ['-js', '-sd', storeDir]),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (!(await probeNats('127.0.0.1', port, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      if (ownsDir) await rm(storeDir, { recursive: true, force: true });
      throw new RlhfError(
        'UNAVAILABLE',
        `nats-server did not start on port ${port}: ${stderr.trim() || 'no output'}`,
        {
          field: 'NATS_URL',
          fix: 'check that nats-server runs (nats-server --version) or point NATS_URL at a running server',
        },
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopped: Promise<void> | null = null;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    pid: child.pid ?? 0,
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        if (ownsDir) await rm(storeDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
