/**
 * The entry point a service folder runs on its own (`node --import tsx services/reward-model/src/main.ts`):
 * the same flags as `rlhf serve <service>`, parsed with node's parseArgs from the shared flag table.
 */
import { parseArgs } from 'node:util';
import { resolveServeOptions, serveFlags } from './config/serve-flags.js';
import { exitWithError } from './exit.js';
import { type ServeOptions, type ServiceModule, serveService } from './service-host.js';

export function serveHelp(usage: string, module: ServiceModule): string {
  const width = Math.max(...serveFlags.map((f) => f.name.length + f.value.length)) + 6;
  const lines = serveFlags.map((f) => {
    const left = `  --${f.name} ${f.value}`.padEnd(width + 2);
    const extra = [f.env ? `env ${f.env}` : '', f.default !== undefined ? `default ${f.default}` : '']
      .filter(Boolean)
      .join(', ');
    return `${left}${f.description}${extra ? ` (${extra})` : ''}`;
  });
  return `Usage: ${usage} [options]\n\n${module.summary}\nServes ${module.grpcServiceNames.join(', ')}, grpc.health.v1 and server reflection.\n\nOptions:\n${lines.join('\n')}\n  -h, --help${' '.repeat(Math.max(1, width - 8))}show this help\n`;
}

/** The line a service prints once it serves (test/helpers/service-process.ts reads it back). */
export function listeningBanner(
  name: string,
  host: string,
  grpcPort: number,
  metricsPort: number | null,
  openaiPort: number | null = null,
): string {
  return `${name} listening on ${host}:${grpcPort}${metricsPort === null ? '' : ` (metrics on :${metricsPort})`}${openaiPort === null ? '' : ` (openai on :${openaiPort})`}`;
}

/** Starts the service and prints `<name> listening on <host>:<port>` on stdout once it serves. */
export async function startService(
  module: ServiceModule,
  options: ServeOptions,
): Promise<Awaited<ReturnType<typeof serveService>>> {
  const running = await serveService(module, { ...options, handleSignals: true });
  process.stdout.write(
    `${listeningBanner(module.name, options.host, running.grpcPort, running.metricsPort, running.openaiPort)}\n`,
  );
  if (process.env.RLHF_EXIT_WITH_PARENT === '1') stopWhenOrphaned();
  return running;
}

/**
 * Workers started by `rlhf run` stop (drain, nak their shard) when the CLI that started them is gone, even
 * when it was SIGKILLed and could not tell them: the kernel then hands them to another parent.
 */
function stopWhenOrphaned(): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1000);
  timer.unref();
}

export async function runServiceMain(
  module: ServiceModule,
  argv: string[],
  reflection: { files: string[]; includeDirs: string[] },
): Promise<void> {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...Object.fromEntries(
          serveFlags.map((f) => [f.name, { type: 'string' as const, multiple: f.repeatable === true }]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(serveHelp(module.name, module));
      return;
    }
    const raw: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(values)) {
      if (typeof v === 'string' || Array.isArray(v))
        raw[k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
    }
    await startService(module, { ...resolveServeOptions(raw), reflection });
  } catch (err) {
    exitWithError(err);
  }
}
