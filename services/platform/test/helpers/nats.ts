/**
 * NATS for tests: the server named by NATS_URL when set, otherwise a nats-server started on a free loopback
 * port for this test file (and stopped after it). Tests never share JetStream state by accident: each gets
 * its own server, or — against a shared NATS_URL — names its streams and buckets uniquely.
 */
import { parseNatsUrl } from '../../src/config/parse.js';
import { startLocalNatsServer } from '../../src/nats/local-server.js';

export interface TestNats {
  url: string;
  /** True when this harness started the server (so tests may stop and restart it). */
  owned: boolean;
  stop(): Promise<void>;
}

export async function natsForTests(): Promise<TestNats> {
  const fromEnv = process.env.NATS_URL;
  if (fromEnv) return { url: parseNatsUrl(fromEnv, 'NATS_URL'), owned: false, stop: async () => {} };
  const server = await startLocalNatsServer();
  return { url: server.url, owned: true, stop: () => server.stop() };
}
