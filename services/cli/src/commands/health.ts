import { parseIntegerIn, RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';

interface HealthFlags {
  address: string;
  service: string;
  timeout: string;
  list?: boolean;
  authTokenFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

export function registerHealth(program: Command): void {
  program
    .command('health')
    .summary('ask a running service for its gRPC health (exit 0 when SERVING)')
    .requiredOption('--address <HOST:PORT>', 'the server to ask, e.g. 127.0.0.1:50051')
    .option('--service <NAME>', 'a fully qualified service name; empty asks about the whole server', '')
    .option('--timeout <MS>', 'deadline of the call in milliseconds', '5000')
    .option('--list', 'also list the services the server answers, one a line (from its reflection)')
    .option(
      '--auth-token-file <FILE>',
      'file holding the bearer token to send [env RLHF_AUTH_TOKEN_FILE, or the token in RLHF_AUTH_TOKEN]',
    )
    .option('--tls-ca <FILE>', "PEM CA that signed the server's certificate; turns TLS on")
    .option('--tls-cert <FILE>', 'PEM client certificate for mutual TLS (with --tls-key)')
    .option('--tls-key <FILE>', 'PEM private key of --tls-cert')
    .option('--tls-server-name <NAME>', "the name in the server's certificate, when --address is not it")
    .action(async (flags: HealthFlags) => {
      const { checkHealth, clientChannel, listServices } = await import('@rlhf/platform');
      const deadlineMs = parseIntegerIn(flags.timeout, '--timeout', 1, 600_000);
      const channel = clientChannel(flags);
      const probe = { deadlineMs, credentials: channel.credentials, clientOptions: channel.options };
      let status: string;
      try {
        status = await checkHealth(flags.address, flags.service, probe);
      } catch (cause) {
        throw new RlhfError(
          'UNAVAILABLE',
          `no health answer from ${flags.address}: ${(cause as Error).message}`,
          {
            field: '--address',
            fix: 'check that the service runs and listens there',
            cause,
          },
        );
      }
      process.stdout.write(`${status}\n`);
      if (flags.list) {
        for (const name of await listServices(flags.address, probe)) process.stdout.write(`${name}\n`);
      }
      if (status !== 'SERVING') process.exitCode = 1;
    });
}
