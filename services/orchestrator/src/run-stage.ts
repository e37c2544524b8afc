/**
 * `rlhf stage`: what one pod of a cluster stage Job runs. It starts the unit's service workers next to it
 * (`rlhf serve <service>` with NATS), then reconciles the run up to the unit's stop point: earlier stages
 * are skipped from their KV records, the unit's stages run (their shards shared with the other pods of the
 * Job through the work queues), and it exits 0 once the unit's record exists. After the last unit it also
 * stores summary.json and report.html next to the run's artifacts. A failure is written to KV for the
 * controller's Failed condition and ends the process non-zero, so the Job retries it.
 */
import { hostname } from 'node:os';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  ensureStreams,
  hfConfiguredInEnv,
  type Logger,
  type NatsAuth,
  openJetStream,
  openStateKv,
  parseArtifactRoots,
  s3ConfiguredInEnv,
} from '@rlhf/platform';
import type { RlhfRun } from '@rlhf/run-spec';
import { type RunSummary, runBase, type StageUnit, specDigest, unitServices } from '@rlhf/workflow';
import { type LocalWorkers, startLocalWorkers } from './local-workers.js';
import { reconcileUntil } from './reconcile-run.js';
import { renderReport } from './report/report-html.js';
import type { StageUi } from './run-context.js';
import { RunState } from './run-state.js';
import { natsShardExecutor } from './shard-executor.js';
import { trainJobPathsFromEnv } from './trainjob-files.js';
import { prepareTrainJob } from './trainjob-prepare.js';

export interface StageProcessOptions {
  run: RlhfRun;
  unit: StageUnit;
  natsUrl: string;
  /** Credentials and TLS for natsUrl (the unit's workers get the same). */
  natsAuth?: NatsAuth;
  /** How long to wait for NATS at start-up (default: fail at once). */
  natsStartWaitMs?: number;
  /** Pods of the Job: the shard count of sharded stages. */
  replicas: number;
  /** Worker logs; the process's stderr (the pod log) when absent. */
  logDir?: string;
  ui: StageUi;
  logger: Logger;
  /** argv that runs the rlhf CLI, for the worker processes. */
  command: string[];
  /**
   * `trainjob-prepare`: instead of the unit, write what the iteration's TrainJob trains on (the policy as a
   * Hugging Face checkpoint, the pairs in TRL's format) into RLHF_TRAINJOB_DIR; no record is written.
   */
  step?: 'trainjob-prepare';
}

const enc = new TextEncoder();
const jsonSafe = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v);

/** Runs the unit; resolves with the run's summary when the unit was the run's last one. */
export async function runStageProcess(o: StageProcessOptions): Promise<RunSummary | null> {
  const uid = (o.run.metadata as { uid?: string }).uid;
  const runRef = {
    namespace: o.run.metadata.namespace ?? 'default',
    name: o.run.metadata.name,
    // The RLHFRun's uid: a run deleted and created again under its name never has its shards deduplicated.
    ...(uid ? { epoch: uid } : {}),
  };
  const nc = await connectNats({
    url: o.natsUrl,
    ...(o.natsAuth ? { auth: o.natsAuth } : {}),
    ...(o.natsStartWaitMs !== undefined ? { startWaitMs: o.natsStartWaitMs } : {}),
    name: `rlhf-stage-${runRef.name}-${o.unit.stage}`,
    logger: o.logger,
  });
  let workers: LocalWorkers | null = null;
  const state = new RunState(await openStateKv(nc), runRef);
  try {
    const { js, jsm } = await openJetStream(nc);
    await ensureStreams(jsm);
    // Stage workers execute work only for runs that have a record, and only work carrying the record's
    // epoch: the first unit of a run writes it, and so does the first unit of a run created again under
    // the same name (another uid) whose old records were not purged.
    const known = await state.runRecord();
    if (!known || (uid && known.epoch !== uid))
      await state.setRun({
        specDigest: specDigest(o.run),
        ...(uid ? { epoch: uid } : {}),
        phase: 'Running',
        message: '',
        updatedAt: new Date().toISOString(),
      });
    // The prepare step reads records and artifacts only: it needs no service workers.
    const services = o.step ? [] : unitServices(o.run.spec, o.unit.stage);
    workers = await startLocalWorkers({
      command: o.command,
      natsUrl: o.natsUrl,
      ...(o.natsAuth ? { natsAuth: o.natsAuth } : {}),
      plan: services.map((service) => ({ service, replicas: 1 })),
      ...(o.logDir ? { logDir: o.logDir } : {}),
      supervision: { notice: (line) => o.logger.warn(line) },
      namePrefix: `${hostname()}/`,
    });
    // The spec's file:// URIs only below the artifact roots the pod mounts (RLHF_ARTIFACT_ROOTS, set by the
    // controller); its workers inherit the same variable.
    const roots = parseArtifactRoots(process.env.RLHF_ARTIFACT_ROOTS ?? '', 'RLHF_ARTIFACT_ROOTS');
    const store = new ArtifactRouter(
      nc,
      ArtifactSandbox.confined({
        roots,
        nats: true,
        s3: s3ConfiguredInEnv(process.env),
        hf: hfConfiguredInEnv(process.env),
      }),
    );
    try {
      const ctx = {
        run: runRef,
        spec: o.run.spec,
        deps: { store, logger: o.logger },
        exec: natsShardExecutor({
          nc,
          js,
          store,
          logger: o.logger,
          signal: workers.signal,
          describeWorker: workers.describe,
        }),
        state,
        ui: o.ui,
        workers: o.replicas,
      };
      if (o.step === 'trainjob-prepare') {
        const paths = trainJobPathsFromEnv();
        const pairs = await prepareTrainJob(ctx, o.unit.iteration, paths);
        o.ui.say(
          `iteration ${o.unit.iteration} train: ${pairs} pairs and the policy written to ${paths.dir}`,
        );
        return null;
      }
      const summary = await reconcileUntil(ctx, o.unit.until);
      // Not the run's last unit: the unit's record exists and the next Job takes over.
      if (!summary) return null;
      const report = renderReport(summary);
      const base = runBase(runRef);
      await store.put(`${base}/summary.json`, enc.encode(`${JSON.stringify(summary, jsonSafe, 2)}\n`));
      await store.put(`${base}/report.html`, enc.encode(report.html));
      await state.putSummary({
        summary: `${base}/summary.json`,
        report: `${base}/report.html`,
        bestIteration: summary.bestIteration,
        finishedAt: new Date().toISOString(),
      });
      return summary;
    } catch (err) {
      const gone = workers.exited();
      const e = err as Error & { field?: string; fix?: string };
      const what = `${e.field ? `${e.field}: ` : ''}${e.message}${e.fix ? ` (fix: ${e.fix})` : ''}`;
      const message = gone.length ? `${what} (${gone.join('; ')})` : what;
      await state
        .putError({ iteration: o.unit.iteration, stage: o.unit.stage, message, at: new Date().toISOString() })
        .catch(() => {});
      throw err;
    }
  } finally {
    await workers?.stop();
    await nc.drain().catch(() => {});
  }
}
