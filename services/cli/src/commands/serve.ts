import { resolveServeOptions, serveFlags, startService } from '@rlhf/platform';
import { Argument, type Command } from 'commander';
import { serviceByName, serviceModules } from '../service-registry.js';

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .summary('run one model service (gRPC server, and NATS worker when --nats-url is set)')
    .description(
      [
        'Run one of the platform services in the foreground until SIGTERM or Ctrl-C, then drain in-flight calls.',
        'Every service answers grpc.health.v1 and server reflection. Flags fall back to the environment',
        'variable named in brackets, then to the default.',
        '',
        ...serviceModules.map((s) => `  ${s.name.padEnd(18)}${s.summary}`),
      ].join('\n'),
    )
    .addArgument(
      new Argument('<service>', 'which service to run').choices(serviceModules.map((s) => s.name)),
    );
  for (const f of serveFlags) {
    const extra = [f.env ? `env ${f.env}` : '', f.default !== undefined ? `default ${f.default}` : '']
      .filter(Boolean)
      .join(', ');
    cmd.option(`--${f.name} <${f.value}>`, `${f.description}${extra ? ` [${extra}]` : ''}`);
  }
  cmd.addHelpText(
    'after',
    '\nExample:\n  rlhf serve reward-model --port 0 --nats-url nats://127.0.0.1:4222\n',
  );
  cmd.action(async (name: string, flags: Record<string, string>) => {
    const module = serviceByName(name);
    if (!module) throw new Error(`unknown service ${name}`);
    // Loaded here, not at the top: only `serve` needs the proto files, and every other command starts faster.
    const { protoFiles, protoRoot } = await import('@rlhf/proto');
    await startService(module, {
      ...resolveServeOptions(flags),
      reflection: { files: protoFiles, includeDirs: [protoRoot] },
    });
  });
}
