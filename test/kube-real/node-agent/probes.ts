/**
 * One try of a readiness (or liveness) probe, as the kubelet makes it: httpGet succeeds on a status in
 * [200, 400), tcpSocket on a connection, exec on exit code 0 (the command runs on the host with the
 * container's environment, not inside its mount namespace). Named ports resolve through the container's
 * `ports`. Pods share the host network, so the host is 127.0.0.1 unless the probe names one.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

export interface Probe {
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: string;
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string; host?: string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
}

function resolvePort(port: number | string, ports: ContainerPort[]): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const found = ports.find((p) => p.name === port);
  if (!found) throw new Error(`probe port "${port}" is not a named port of the container`);
  return found.containerPort;
}

export function probeOnce(probe: Probe, ports: ContainerPort[], env: NodeJS.ProcessEnv): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  return new Promise((resolve) => {
    try {
      if (probe.httpGet) {
        const g = probe.httpGet;
        const https = (g.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
        const url = `${https ? 'https' : 'http'}://${g.host ?? '127.0.0.1'}:${resolvePort(g.port, ports)}${g.path ?? '/'}`;
        const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
        const req = (https ? httpsRequest : httpRequest)(
          url,
          { headers, timeout: timeoutMs, ...(https ? { rejectUnauthorized: false } : {}) },
          (res) => {
            res.resume();
            const code = res.statusCode ?? 0;
            resolve(code >= 200 && code < 400);
          },
        );
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      } else if (probe.tcpSocket) {
        const socket = connect(resolvePort(probe.tcpSocket.port, ports), probe.tcpSocket.host ?? '127.0.0.1');
        socket.setTimeout(timeoutMs, () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      } else if (probe.exec) {
        const [cmd, ...args] = probe.exec.command;
        const child = spawn(cmd!, args, { env, stdio: 'ignore' });
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('error', () => resolve(false));
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code === 0);
        });
      } else resolve(true);
    } catch {
      resolve(false);
    }
  });
}
