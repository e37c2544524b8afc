import { readFile } from 'node:fs/promises';
import type { StageUi } from '@rlhf/orchestrator';
import { invalidArgument, type LogLevel, parseIntegerIn } from '@rlhf/platform/core';
import type { RlhfRun } from '@rlhf/run-spec';
import type { Command } from 'commander';
import { addNatsOptions, natsConfigOf } from '../nats-flags.js';

interface StageFlags {
  iteration: string;
  runFile?: string;
  natsUrl?: string;
  replicas: string;
  logLevel: string;
  trainjobStep?: string;
}

/** Progress as plain log lines (a pod has no terminal): at most one line per stage every few seconds. */
function logLineUi(): StageUi {
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const last = new Map<string, { at: number; line: string }>();
  return {
    start: (label) => {
      say(`${label}: started`);
      return (done, total, unit) => {
        const now = Date.now();
        const line = `${label}: ${done}/${total} ${unit}`;
        const prev = last.get(label);
        if (prev?.line === line || (done < total && now - (prev?.at ?? 0) < 5000)) return;
        last.set(label, { at: now, line });
        say(line);
      };
    },
    finish: (label, line) => say(`${label}: ${line}`),
    skip: (label) => say(`${label}: done earlier (skipped)`),
    say,
  };
}

async function loadRun(f: StageFlags): Promise<RlhfRun> {
  const { parseRunObject, parseRunYaml } = await import('@rlhf/run-spec');
  if (f.runFile) {
    let text: string;
    try {
      text = await readFile(f.runFile, 'utf8');
    } catch (err) {
      throw invalidArgument('--run-file', `cannot read ${f.runFile}: ${(err as Error).message}`);
    }
    return parseRunYaml(text, f.runFile);
  }
  const env = process.env.RLHF_RUN;
  if (!env)
    throw invalidArgument(
      'RLHF_RUN',
      'no run given',
      'set RLHF_RUN to the RLHFRun as JSON (the controller does) or pass --run-file RUN.yaml',
    );
  let raw: unknown;
  try {
    raw = JSON.parse(env);
  } catch (err) {
    throw invalidArgument('RLHF_RUN', `is not JSON: ${(err as Error).message}`);
  }
  return parseRunObject(raw, 'RLHF_RUN');
}

export function registerStage(program: Command): void {
  const cmd = program
    .command('stage')
    .argument('<unit>', 'setup, generate, judge, pair, train or evaluate')
    .summary("run one unit of an RLHFRun (what a cluster stage Job's pods run)")
    .description(
      [
        'Runs one unit of an RLHFRun against a shared NATS: `setup` (iteration 0: data, SFT, reward model,',
        'length-penalty fit, evaluation of pi_0) or one stage of iteration --iteration. It starts the workers of',
        "the unit's services next to itself, skips every stage already recorded in JetStream KV, runs the",
        "unit's stages and exits 0 once the unit's record exists; on a failure it records the reason and exits",
        'non-zero so the Job retries. The controller creates these Jobs; the run comes from RLHF_RUN (JSON),',
        'NATS from NATS_URL. After the last unit, summary.json and report.html are stored with the run.',
      ].join('\n'),
    )
    .option('--iteration <T>', 'the iteration (0 for setup)', '0')
    .option('--run-file <RUN.yaml>', 'read the RLHFRun from a file instead of RLHF_RUN')
    .option(
      '--replicas <N>',
      "pods of the stage's Job (sets the shard count)",
      process.env.RLHF_STAGE_REPLICAS ?? '1',
    )
    .option('--log-level <LEVEL>', 'log level', process.env.LOG_LEVEL ?? 'info')
    .option(
      '--trainjob-step <STEP>',
      "prepare: write what the iteration's Kubeflow TrainJob trains on into RLHF_TRAINJOB_DIR (train with engines.train trainjob)",
    );
  addNatsOptions(cmd, 'NATS with JetStream', '0s: fail at once');
  cmd.action(async (unitName: string, f: StageFlags) => {
    const { runStageProcess } = await import('@rlhf/orchestrator');
    const { parseUnit } = await import('@rlhf/workflow');
    const { createLogger } = await import('@rlhf/platform');
    const iteration = parseIntegerIn(f.iteration, '--iteration', 0, 100);
    let unit: ReturnType<typeof parseUnit>;
    try {
      unit = parseUnit(unitName, iteration);
    } catch (err) {
      throw invalidArgument('<unit>', (err as Error).message, 'e.g. `rlhf stage generate --iteration 1`');
    }
    const nats = natsConfigOf(f, 0);
    if (!nats.url) throw invalidArgument('--nats-url', 'is required', 'set NATS_URL or pass --nats-url');
    const replicas = parseIntegerIn(f.replicas, '--replicas', 1, 1024);
    if (f.trainjobStep !== undefined && (f.trainjobStep !== 'prepare' || unit.stage !== 'train'))
      throw invalidArgument(
        '--trainjob-step',
        `"${f.trainjobStep}" with unit ${unit.stage}: the only step is prepare, of the train unit`,
        'e.g. `rlhf stage train --iteration 1 --trainjob-step prepare`',
      );
    const run = await loadRun(f);
    const ui = logLineUi();
    ui.say(`run ${run.metadata.name}: unit ${unit.stage} of iteration ${unit.iteration}`);
    const summary = await runStageProcess({
      run,
      unit,
      natsUrl: nats.url,
      natsAuth: nats.auth,
      natsStartWaitMs: nats.startWaitMs,
      replicas,
      ui,
      logger: createLogger('rlhf-stage', { level: f.logLevel as LogLevel }),
      command: [process.execPath, ...process.execArgv, process.argv[1] as string],
      ...(f.trainjobStep ? { step: 'trainjob-prepare' as const } : {}),
    });
    ui.say(
      f.trainjobStep
        ? `iteration ${unit.iteration}: TrainJob inputs written`
        : summary
          ? `run finished: best iteration ${summary.bestIteration ?? '-'} (${summary.bestPolicy})`
          : `unit ${unit.stage} of iteration ${unit.iteration} done`,
    );
  });
}
