import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { StageUi } from '@rlhf/orchestrator';
import { invalidArgument, type LogLevel, parseDuration, parseIntegerIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { addNatsOptions, natsConfigOf } from '../nats-flags.js';
import { ProgressBar } from '../progress.js';

interface RunFlags {
  file?: string;
  out?: string;
  workers: string;
  natsUrl?: string;
  restart?: boolean;
  logLevel: string;
  workerRestarts: string;
  stallTimeout: string;
}

/** Progress bars per stage on stderr, one line per finished stage. */
export function terminalUi(): StageUi {
  const bars = new Map<string, { bar: ProgressBar; total: number; last: number }>();
  const say = (line: string) => process.stderr.write(`${line}\n`);
  return {
    start: (label) => (done, total, unit) => {
      let b = bars.get(label);
      if (!b || b.total !== total) {
        b = { bar: new ProgressBar({ label, total, unit }), total, last: -1 };
        bars.set(label, b);
      }
      if (done === b.last) return;
      b.last = done;
      b.bar.update(done);
    },
    finish: (label, line) => {
      const b = bars.get(label);
      if (b) b.bar.done(line);
      else say(`${label}: ${line}`);
      bars.delete(label);
    },
    skip: (label) => say(`${label}: done in an earlier run (skipped)`),
    say,
  };
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .summary('reconcile an RLHFRun on this machine: stage workers over NATS, resumable, with a report')
    .description(
      [
        'Runs one RLHFRun (the YAML `kubectl apply` takes) on this machine: optional setup (synthetic data, SFT,',
        'reward model, the length-penalty fit), then per iteration generate -> judge -> pair -> train DPO -> evaluate.',
        'Stage work is sharded over NATS to worker processes this command starts (`rlhf serve <service>`); stage',
        'state lives in JetStream KV. NATS is --nats-url / NATS_URL, or a nats-server started here with its store',
        'under <out>/nats. Interrupt it at any point (Ctrl-C, or even SIGKILL) and run the same command again:',
        'finished stages are skipped and the run ends with the same metrics. At the end <out> holds summary.json,',
        "report.html, charts/*.svg and the models: models/policy (the best iteration's policy), models/initial-policy",
        '(pi_0) and, when setup trained them, models/reward-model and models/preference-model, each a model',
        'directory that `rlhf generate`, `rlhf eval` and `rlhf model export` read. Worker logs are in <out>/logs, and a training job',
        'interrupted mid-way keeps its checkpoint in <out>/work to resume from.',
      ].join('\n'),
    )
    .requiredOption('-f, --file <RUN.yaml>', 'the RLHFRun manifest')
    .option('--out <DIR>', 'output directory (default runs/<metadata.name>)')
    .option('--workers <N>', 'worker processes per sharded stage (generate, judge, evaluate)', '1')
    .option('--restart', 'forget the finished stages of this run and start over')
    .option('--log-level <LEVEL>', 'log level of this process (workers log to <out>/logs)', 'warn')
    .option(
      '--worker-restarts <N>',
      'restarts in a row a worker that exits gets (after a backoff of 0.5 s doubling to 10 s) before the run stops [env RLHF_WORKER_RESTARTS]',
      process.env.RLHF_WORKER_RESTARTS ?? '5',
    )
    .option(
      '--stall-timeout <DURATION>',
      'report a shard that shows no progress for this long (which shard, which worker), again as long as it lasts [env RLHF_STALL_TIMEOUT]',
      process.env.RLHF_STALL_TIMEOUT ?? '120s',
    );
  addNatsOptions(cmd, 'use this NATS (JetStream) instead of starting one', '0s: fail at once');
  cmd.action(async (f: RunFlags) => {
    const { runLocal } = await import('@rlhf/orchestrator');
    const { createLogger } = await import('@rlhf/platform');
    const { parseRunYaml } = await import('@rlhf/run-spec');
    if (!f.file) throw invalidArgument('--file', 'is required', 'pass -f RUN.yaml');
    const workers = parseIntegerIn(f.workers, '--workers', 1, 64);
    const workerRestarts = parseIntegerIn(f.workerRestarts, '--worker-restarts', 0, 1000);
    const stallMs = parseDuration(f.stallTimeout, '--stall-timeout');
    if (stallMs < 1000)
      throw invalidArgument(
        '--stall-timeout',
        `${f.stallTimeout} is under a second`,
        'pass e.g. 120s or 10m',
      );
    let text: string;
    try {
      text = await readFile(f.file, 'utf8');
    } catch (err) {
      throw invalidArgument(
        '--file',
        `cannot read ${f.file}: ${(err as Error).message}`,
        'pass an existing RLHFRun YAML file',
      );
    }
    const run = parseRunYaml(text, f.file);
    const nats = natsConfigOf(f, 0);
    const out = resolve(f.out ?? `runs/${run.metadata.name}`);
    const ui = terminalUi();
    ui.say(`run ${run.metadata.name}: ${run.spec.iterations} iterations, output in ${out}`);
    const summary = await runLocal({
      run,
      out,
      workers,
      ...(nats.url ? { natsUrl: nats.url, natsAuth: nats.auth } : {}),
      ...(f.restart ? { restart: true } : {}),
      workerRestarts,
      stallMs,
      ui,
      logger: createLogger('rlhf-run', { level: f.logLevel as LogLevel }),
      command: [process.execPath, ...process.execArgv, process.argv[1] as string],
    });
    ui.say(
      `done: best iteration ${summary.bestIteration ?? '-'}, its policy in ${out}/models/policy (${summary.bestPolicy}); wrote ${out}/summary.json and ${out}/report.html`,
    );
  });
}
