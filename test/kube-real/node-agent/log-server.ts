/**
 * The kubelet's read-only log endpoint, `GET /containerLogs/<namespace>/<pod>/<container>`, over HTTPS on
 * the node's daemon endpoint port, which the API server calls for `pods/log` (kubectl logs). The server
 * presents a certificate from the cluster CA for 127.0.0.1 and accepts only clients with a certificate from
 * that CA (the API server's kubelet client certificate); it does not ask the API server to authorize the
 * caller (a real kubelet does, by SubjectAccessReview). Query: `tailLines`, `limitBytes`, `follow` (streams
 * new output until the container's process exits).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';

export interface LogSource {
  logPath(namespace: string, pod: string, container: string): string | undefined;
  isRunning(namespace: string, pod: string, container: string): boolean;
}

function tail(text: string, lines: number): string {
  const parts = text.split('\n');
  const trailing = parts.at(-1) === '' ? parts.pop() : undefined;
  return parts.slice(Math.max(0, parts.length - lines)).join('\n') + (trailing === '' ? '\n' : '');
}

export async function startLogServer(
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
  source: LogSource,
): Promise<{ port: number; server: Server }> {
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://node');
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: only /containerLogs is served\n');
      return;
    }
    const [ns, pod, container] = match.slice(1).map(decodeURIComponent) as [string, string, string];
    const file = source.logPath(ns, pod, container);
    if (!file || !existsSync(file)) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`container "${container}" in pod "${pod}" has no log here\n`);
      return;
    }
    const initial = readFileSync(file);
    let text = initial.toString('utf8');
    const tailLines = url.searchParams.get('tailLines');
    if (tailLines !== null && /^\d+$/.test(tailLines)) text = tail(text, Number(tailLines));
    const limit = url.searchParams.get('limitBytes');
    const limitBytes = limit !== null && /^\d+$/.test(limit) ? Number(limit) : undefined;
    let body = Buffer.from(text, 'utf8');
    if (limitBytes !== undefined) body = body.subarray(0, limitBytes);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(body);
    if (url.searchParams.get('follow') !== 'true' || limitBytes !== undefined) {
      res.end();
      return;
    }
    let offset = initial.length;
    const timer = setInterval(() => {
      // Asked before reading: a process that exits meanwhile has written all it will by the read.
      const running = source.isRunning(ns, pod, container);
      const all = readFileSync(file);
      if (all.length > offset) {
        res.write(all.subarray(offset));
        offset = all.length;
      }
      if (!running) {
        clearInterval(timer);
        res.end();
      }
    }, 200);
    req.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}
