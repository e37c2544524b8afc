/**
 * One NATS connection per process, reconnecting forever: a long run must pause while NATS is away and go on
 * when it is back, not die. Status changes are logged so an operator sees why work stopped. A service that
 * starts while NATS is down waits for it (startWaitMs), logging every few seconds; a refused credential
 * fails at once, since trying the same one again cannot help. Nothing printed carries a secret.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RlhfError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { redact } from '../observability/redact.js';
import { isNatsAuthError, isNatsTlsError, type NatsAuth, resolveNatsAuth } from './auth.js';

export type { NatsConnection };

/** Where NATS is and how to sign in: resolved once from flags and environment, shared by every caller. */
export interface NatsClientConfig {
  /** One URL or a comma-separated list (already validated by parseNatsUrl); may hold `user:pass@`. */
  url: string;
  auth?: NatsAuth;
  /**
   * How long the first connect keeps trying while NATS cannot be reached: 0 (the default, for commands)
   * fails at once; Infinity (services) waits for as long as it takes.
   */
  startWaitMs?: number;
}

export interface NatsOptions extends NatsClientConfig {
  /** Client name shown by the server's monitoring. */
  name: string;
  logger: Logger;
  /** How long one connect attempt may take before it counts as failed. */
  connectTimeoutMs?: number;
  /** Seconds between "still waiting" log lines while NATS is unreachable at start-up. */
  waitLogEveryMs?: number;
}

const RETRY_MS = 1000;

export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const resolved = resolveNatsAuth(options.url, options.auth);
  const where = resolved.servers.join(',');
  const clean = (text: string): string => redact(text, resolved.secrets);
  const startWaitMs = options.startWaitMs ?? 0;
  const logEvery = options.waitLogEveryMs ?? 5000;
  const started = Date.now();
  let lastLog = started;
  let attempts = 0;
  let nc: NatsConnection;
  for (;;) {
    attempts++;
    try {
      nc = await connect({
        servers: resolved.servers,
        name: options.name,
        timeout: options.connectTimeoutMs ?? 5000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        pingInterval: 10_000,
        ...(resolved.authenticator.length ? { authenticator: resolved.authenticator } : {}),
        ...(resolved.tls ? { tls: resolved.tls } : {}),
      });
      break;
    } catch (cause) {
      const reason = clean((cause as Error).message ?? String(cause));
      if (isNatsAuthError(cause)) {
        throw new RlhfError('FAILED_PRECONDITION', `NATS at ${where} refused the credentials: ${reason}`, {
          field: 'NATS credentials',
          fix: 'check the user/password, token, creds or NKey given by --nats-url, --nats-user, --nats-password-file, --nats-token-file, --nats-creds or --nats-nkey (or their NATS_* variables)',
        });
      }
      if (isNatsTlsError(cause)) {
        throw new RlhfError('FAILED_PRECONDITION', `TLS with NATS at ${where} failed: ${reason}`, {
          field: 'NATS TLS',
          fix: "point --nats-tls-ca / NATS_TLS_CA at the CA of the server's certificate, and give --nats-tls-cert and --nats-tls-key when the server verifies clients",
        });
      }
      const waited = Date.now() - started;
      if (waited >= startWaitMs) {
        throw new RlhfError(
          'UNAVAILABLE',
          `cannot connect to NATS at ${where}${attempts > 1 ? ` (${attempts} attempts in ${Math.round(waited / 1000)} s)` : ''}: ${reason}`,
          {
            field: 'NATS_URL',
            fix: 'start nats-server with JetStream (nats-server -js) or point --nats-url / NATS_URL at a running one',
          },
        );
      }
      if (attempts === 1 || Date.now() - lastLog >= logEvery) {
        lastLog = Date.now();
        options.logger.warn(
          { server: where, waitedSeconds: Math.round(waited / 1000), reason },
          'NATS is not reachable yet; waiting for it',
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, startWaitMs - waited)));
    }
  }
  options.logger.info({ server: clean(nc.getServer()) }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect')
        options.logger.warn({ server: clean(s.server) }, 'NATS connection lost; work paused');
      else if (s.type === 'reconnect')
        options.logger.info({ server: clean(s.server) }, 'NATS connection back; resuming');
      else if (s.type === 'error') options.logger.error({ err: clean(String(s.error)) }, 'NATS error');
    }
  })();
  return nc;
}
