/**
 * NATS for a local run: NATS_URL when given; otherwise a nats-server the CLI starts on a free loopback port
 * with its JetStream store in the run's output directory, so the KV state and artifacts outlive the CLI. A
 * server left running by a killed CLI is found again (its address is recorded next to the store) and reused.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { probeNats, startLocalNatsServer } from '@rlhf/platform';

export interface RunNats {
  url: string;
  /** Stops the server when this process started it. */
  stop(): Promise<void>;
}

export async function natsForRun(o: { url?: string; stateDir: string }): Promise<RunNats> {
  if (o.url) return { url: o.url, stop: async () => {} };
  await mkdir(o.stateDir, { recursive: true });
  const record = join(o.stateDir, 'server.json');
  try {
    const known = JSON.parse(await readFile(record, 'utf8')) as { port: number; pid: number };
    if (await probeNats('127.0.0.1', known.port, 500)) {
      return {
        url: `nats://127.0.0.1:${known.port}`,
        stop: async () => {
          try {
            process.kill(known.pid, 'SIGTERM');
          } catch {
            // already gone
          }
        },
      };
    }
  } catch {
    // no server recorded, or it is gone: start one
  }
  const server = await startLocalNatsServer({ storeDir: join(o.stateDir, 'jetstream') });
  await writeFile(record, JSON.stringify({ port: server.port, pid: server.pid }));
  return { url: server.url, stop: () => server.stop() };
}
