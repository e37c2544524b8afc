import { resolveServeOptions, serveFlags } from '@rlhf/platform/core';
import { Argument, type Command } from 'commander';
import { loadService, serviceEntries } from '../service-registry.js';

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
        ...serviceEntries.map((s) => `  ${s.name.padEnd(18)}${s.summary}`),
      ].join('\n'),
    )
    .addArgument(
      new Argument('<service>', 'which service to run').choices(serviceEntries.map((s) => s.name)),
    );
  for (const f of serveFlags) {
    const extra = [f.env ? `env ${f.env}` : '', f.default !== undefined ? `default ${f.default}` : '']
      .filter(Boolean)
      .join(', ');
    const help = `${f.description}${extra ? ` [${extra}]` : ''}`;
    if (f.repeatable)
      cmd.option(`--${f.name} <${f.value}>`, help, (v: string, prev: string[] = []) => [...prev, v]);
    else cmd.option(`--${f.name} <${f.value}>`, help);
  }
  cmd.addHelpText(
    'after',
    [
      '',
      'Tuning (environment only):',
      '  RLHF_MODEL_CACHE        where fetched models are unpacked (default',
      '                          <tmp>/rlhf-model-cache-<uid>, mode 0700)',
      "  RLHF_WORK_DIR           training jobs' scratch, kept to resume an",
      '                          interrupted job (default <tmp>/rlhf-<service>)',
      '  RLHF_ORT_THREADS        ONNX Runtime intra-op threads (default: every',
      "                          core the process may use; set a pod's CPU limit)",
      '  RLHF_ORT_SMALL_RUN_MFLOPS',
      '                          runs estimated under this many MFLOPs take a',
      '                          one-thread session (default 256; 0: never)',
      '  RLHF_ROW_LOOP_MAX_PARAMETERS',
      '                          causal LMs up to this size decode a lone row up',
      '                          to 16 tokens an ONNX Runtime call, on a second',
      '                          session (default 25000000; 0: never)',
      '  RLHF_GENERATE_BATCH_WINDOW_MS, RLHF_GENERATE_MAX_BATCH',
      "                          the policy generator's batching window and",
      '                          rows (default 5 ms, 64)',
      '  RLHF_SCORE_BATCH_WINDOW_MS, RLHF_SCORE_MAX_BATCH',
      "                          the reward model's batching window and",
      '                          responses (default 0 ms, 64)',
      "  RLHF_WORK_ACK_WAIT_MS   stage workers' redelivery timeout (default 5000)",
      "  RLHF_WORKER_NAME        this worker's name in stage events and stall",
      '                          reports (default <host>-<pid>)',
      '',
      'Without --artifact-root (or RLHF_ARTIFACT_ROOTS) the service refuses every file:// URI',
      'from clients and stage work (PERMISSION_DENIED); nats-obj:// needs --nats-url.',
      '',
      'Example:',
      '  rlhf serve reward-model --port 0 --nats-url nats://127.0.0.1:4222',
      '',
    ].join('\n'),
  );
  cmd.action(async (name: string, flags: Record<string, string | string[]>) => {
    // Loaded here, not at the top: only `serve` needs a service and the proto files, and only the one served.
    const module = await loadService(name);
    if (!module) throw new Error(`unknown service ${name}`);
    const { protoFiles, protoRoot } = await import('@rlhf/proto');
    const { startService } = await import('@rlhf/platform');
    await startService(module, {
      ...resolveServeOptions(flags),
      reflection: { files: protoFiles, includeDirs: [protoRoot] },
    });
  });
}
