import { parseIntegerIn, RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';

export function registerHealth(program: Command): void {
  program
    .command('health')
    .summary('ask a running service for its gRPC health (exit 0 when SERVING)')
    .requiredOption('--address <HOST:PORT>', 'the server to ask, e.g. 127.0.0.1:50051')
    .option('--service <NAME>', 'a fully qualified service name; empty asks about the whole server', '')
    .option('--timeout <MS>', 'deadline of the call in milliseconds', '5000')
    .option('--list', 'also list the services the server describes through reflection')
    .action(async (flags: { address: string; service: string; timeout: string; list?: boolean }) => {
      const { checkHealth, listServices } = await import('@rlhf/platform');
      const deadlineMs = parseIntegerIn(flags.timeout, '--timeout', 1, 600_000);
      let status: string;
      try {
        status = await checkHealth(flags.address, flags.service, { deadlineMs });
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
        for (const name of await listServices(flags.address, { deadlineMs }))
          process.stdout.write(`${name}\n`);
      }
      if (status !== 'SERVING') process.exitCode = 1;
    });
}
