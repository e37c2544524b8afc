/**
 * `rlhf run` on one machine: NATS (given or started), the stage workers as local processes, the run
 * reconciled stage by stage with its state in JetStream KV, then the run's models (models/policy, the best
 * iteration's, and the judge models setup trained), summary.json, report.html and the charts in the output
 * directory. Running the same command again resumes; a changed spec is refused unless the
 * user asks for a fresh start, since finished stages would no longer match it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  ensureStreams,
  type Logger,
  localHfEnv,
  type NatsAuth,
  openJetStream,
  openStateKv,
  s3ConfiguredInEnv,
} from '@rlhf/platform';
import type { RlhfRun } from '@rlhf/run-spec';
import type { RunSummary } from '@rlhf/workflow';
import { localRunRoots } from './artifact-roots.js';
import { natsForRun } from './local-nats.js';
import { type LocalWorkers, startLocalWorkers, type WorkerPlan } from './local-workers.js';
import { throughOutages, watchOutages } from './nats-outages.js';
import { reconcileRun } from './reconcile-run.js';
import type { StageUi } from './run-context.js';
import { writeRunOutputs } from './run-outputs.js';
import { startRunRecord } from './run-start.js';
import { RunState } from './run-state.js';
import { natsShardExecutor } from './shard-executor.js';

export interface LocalRunOptions {
  run: RlhfRun;
  out: string;
  /** Worker processes for each sharded stage's service. */
  workers: number;
  natsUrl?: string;
  /** Credentials and TLS for natsUrl (the workers get the same). */
  natsAuth?: NatsAuth;
  /** Forget finished stages and start over. */
  restart?: boolean;
  ui: StageUi;
  logger: Logger;
  /** argv that runs the rlhf CLI, for the worker processes. */
  command: string[];
  /** Extra environment of the workers. */
  workerEnv?: NodeJS.ProcessEnv;
  /** Restarts in a row a worker gets before the run stops (default 5). */
  workerRestarts?: number;
  /** A shard with no progress for this long is reported (default 120 s). */
  stallMs?: number;
}

export function workerPlan(run: RlhfRun, workers: number): WorkerPlan[] {
  const plan: WorkerPlan[] = [
    { service: 'policy-generator', replicas: workers },
    { service: 'dpo-trainer', replicas: 1 },
  ];
  if (run.spec.judge.type === 'reward' || run.spec.setup)
    plan.push({ service: 'reward-model', replicas: workers });
  if (run.spec.judge.type === 'preference' || run.spec.setup?.preferenceModel)
    plan.push({ service: 'preference-model', replicas: workers });
  return plan;
}

export async function runLocal(o: LocalRunOptions): Promise<RunSummary> {
  await mkdir(o.out, { recursive: true });
  // The spec's file:// URIs and the workers are confined to the run directory and the spec's own inputs.
  const roots = await localRunRoots(o.run.spec, o.out);
  const sandbox = ArtifactSandbox.confined({
    roots,
    nats: true,
    s3: s3ConfiguredInEnv(process.env),
    // A local run is the user's own: hf:// models come from (and go into) the user's Hugging Face cache.
    hf: true,
  });
  const nats = await natsForRun({ ...(o.natsUrl ? { url: o.natsUrl } : {}), stateDir: join(o.out, 'nats') });
  // Credentials belong to the NATS the user named, not to a server started here.
  const natsAuth = o.natsUrl ? o.natsAuth : undefined;
  const nc = await connectNats({
    url: nats.url,
    ...(natsAuth ? { auth: natsAuth } : {}),
    name: `rlhf-run-${o.run.metadata.name}`,
    logger: o.logger,
  });
  let workers: LocalWorkers | null = null;
  try {
    const { js, jsm } = await openJetStream(nc);
    await ensureStreams(jsm);
    const ref = { namespace: o.run.metadata.namespace ?? 'default', name: o.run.metadata.name };
    const state = new RunState(await openStateKv(nc), ref);
    const { ref: runRef, phase } = await startRunRecord({
      run: o.run,
      state,
      store: new ArtifactRouter(nc, sandbox),
      restart: o.restart === true,
      logger: o.logger,
    });

    const outage = watchOutages(nc);
    workers = await startLocalWorkers({
      command: o.command,
      natsUrl: nats.url,
      ...(natsAuth ? { natsAuth } : {}),
      plan: workerPlan(o.run, o.workers),
      logDir: join(o.out, 'logs'),
      // Training scratch (a job's data and checkpoints, kept only to resume from) under this run's output,
      // not the machine-wide default: two runs of the same name would share it there.
      env: {
        RLHF_WORK_DIR: join(o.out, 'work'),
        RLHF_ARTIFACT_ROOTS: roots.join(':'),
        ...localHfEnv(process.env),
        ...o.workerEnv,
      },
      supervision: {
        ...(o.workerRestarts === undefined ? {} : { maxRestarts: o.workerRestarts }),
        // A worker that could not reach NATS while this process could not either is not at fault.
        excused: outage.overlaps,
        notice: (line) => {
          o.logger.warn(line);
          o.ui.say(line);
        },
      },
    });
    const { signal, describe } = workers;
    try {
      // Everything from here is idempotent (finished stages are skipped, outputs are rewritten with the
      // same bytes), so a step that failed while NATS was away is simply done again once it is back.
      return await throughOutages(
        async () => {
          const store = new ArtifactRouter(nc, sandbox);
          const summary = await reconcileRun({
            run: runRef,
            spec: o.run.spec,
            deps: { store, logger: o.logger },
            exec: natsShardExecutor({
              nc,
              js,
              store,
              logger: o.logger,
              notice: o.ui.say,
              signal,
              describeWorker: describe,
              ...(o.stallMs === undefined ? {} : { stallMs: o.stallMs }),
            }),
            state,
            ui: o.ui,
            workers: o.workers,
          });
          await writeRunOutputs(new ArtifactRouter(nc, sandbox), summary, o.out);
          await phase('Succeeded');
          return summary;
        },
        { watch: outage, logger: o.logger, notice: o.ui.say, signal },
      );
    } catch (err) {
      await phase('Failed', (err as Error).message).catch(() => {});
      const gone = workers.exited();
      if (gone.length) o.logger.error({ workers: gone }, 'workers exited during the run');
      throw err;
    }
  } finally {
    await workers?.stop();
    await nc.drain().catch(() => {});
    await nats.stop();
  }
}
