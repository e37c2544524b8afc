/**
 * The node's own connection to the API server: HTTPS with the node's client certificate (user
 * system:node:<name>, group system:nodes), so the Node authorizer and NodeRestriction admission judge every
 * call as they judge a real kubelet's. JSON requests, and watches as newline-delimited JSON streams.
 */
import type { IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { httpsJson } from '../../helpers/control-plane.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: unknown };

export interface NodeApi {
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse>;
  /** Streams watch events until the server ends the watch or `close()` is called. */
  watch(path: string, onEvent: (e: WatchEvent) => void): { done: Promise<void>; close(): void };
  close(): void;
}

export const mergePatch = 'application/merge-patch+json';

export function nodeApi(server: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }): NodeApi {
  const agent = new Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key });
  const watches = new Set<IncomingMessage>();
  return {
    request(method, path, body, contentType = 'application/json') {
      return httpsJson(`${server}${path}`, tls, method, body, contentType, agent);
    },
    watch(path, onEvent) {
      let response: IncomingMessage | undefined;
      let closed = false;
      const done = new Promise<void>((resolve) => {
        const req = httpsRequest(
          `${server}${path}`,
          { agent, headers: { accept: 'application/json' } },
          (res) => {
            response = res;
            watches.add(res);
            if (closed) res.destroy();
            if (res.statusCode !== 200) {
              // A refused or failed watch: reported as an ERROR event, so the caller relists.
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              const failed = () => {
                watches.delete(res);
                resolve();
              };
              res.on('end', () => {
                const body = Buffer.concat(chunks).toString('utf8');
                onEvent({ type: 'ERROR', object: { code: res.statusCode, body } });
                failed();
              });
              res.on('close', failed);
              res.on('error', failed);
              return;
            }
            let buffered = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              buffered += chunk;
              for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
                const line = buffered.slice(0, nl).trim();
                buffered = buffered.slice(nl + 1);
                if (!line) continue;
                try {
                  onEvent(JSON.parse(line) as WatchEvent);
                } catch {
                  // A line cut by a dropped connection: the caller relists.
                }
              }
            });
            const end = () => {
              watches.delete(res);
              resolve();
            };
            res.on('end', end);
            res.on('close', end);
            res.on('error', end);
          },
        );
        req.on('error', () => resolve());
        req.end();
      });
      return {
        done,
        close() {
          closed = true;
          response?.destroy();
        },
      };
    },
    close() {
      for (const w of watches) w.destroy();
      agent.destroy();
    },
  };
}
