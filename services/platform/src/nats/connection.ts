/**
 * One NATS connection per process, reconnecting forever: a long run must pause while NATS is away and go on
 * when it is back, not die. Status changes are logged so an operator sees why work stopped.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RlhfError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export type { NatsConnection };

export interface NatsOptions {
  /** One URL or a comma-separated list (already validated by parseNatsUrl). */
  url: string;
  /** Client name shown by the server's monitoring. */
  name: string;
  logger: Logger;
  /** How long the first connect may take before it is an error. */
  connectTimeoutMs?: number;
  /** NATS credentials, when the server asks for them. */
  user?: string;
  pass?: string;
  token?: string;
}

export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url.split(','),
      name: options.name,
      timeout: options.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 10_000,
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.pass !== undefined ? { pass: options.pass } : {}),
      ...(options.token !== undefined ? { token: options.token } : {}),
    });
  } catch (cause) {
    throw new RlhfError(
      'UNAVAILABLE',
      `cannot connect to NATS at ${options.url}: ${(cause as Error).message}`,
      {
        field: 'NATS_URL',
        fix: 'start nats-server with JetStream (nats-server -js) or point --nats-url / NATS_URL at a running one',
        cause,
      },
    );
  }
  options.logger.info({ server: nc.getServer() }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect')
        options.logger.warn({ server: s.server }, 'NATS connection lost; work paused');
      else if (s.type === 'reconnect')
        options.logger.info({ server: s.server }, 'NATS connection back; resuming');
      else if (s.type === 'error') options.logger.error({ err: s.error }, 'NATS error');
    }
  })();
  return nc;
}
