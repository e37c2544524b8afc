/**
 * A run in this one process, no NATS: the same stage functions as `rlhf run` (reconcileRun), with every
 * shard handed straight to the handler the stage's service serves its work queue with
 * (in-process-executor.ts). Artifacts keep their Object Store keys as files under <out>/objects and the stage
 * records are files under <out>/state, so running the same command again resumes where it stopped, and a
 * finished run leaves what `rlhf run` leaves: models/, summary.json, report.html and charts/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ArtifactRouter,
  ArtifactSandbox,
  type ArtifactStore,
  DirectoryObjectStore,
  type Logger,
  s3ConfiguredInEnv,
} from '@rlhf/platform';
import type { RlhfRun } from '@rlhf/run-spec';
import type { ShardHandler } from '@rlhf/service-kit';
import type { RunSummary } from '@rlhf/workflow';
import { localRunRoots } from './artifact-roots.js';
import { fileRunState } from './file-state-kv.js';
import { handlersByToken, inProcessShardExecutor } from './in-process-executor.js';
import { reconcileRun } from './reconcile-run.js';
import type { StageUi } from './run-context.js';
import { writeRunOutputs } from './run-outputs.js';
import { startRunRecord } from './run-start.js';

/** What the services of a run in this process need from it. */
export interface InProcessHost {
  /** The run's artifact store: the services read and write through it too. */
  store: ArtifactStore;
  sandbox: ArtifactSandbox;
  /** Training scratch (a job's data and checkpoints, kept to resume from). */
  workDir: string;
}

/** The loaded services' shard handlers, and what releases their models and jobs once the run ends. */
export interface InProcessServices {
  handlers: ShardHandler[];
  stop(): Promise<void>;
}

export interface InProcessRunOptions {
  run: RlhfRun;
  out: string;
  /** Forget finished stages and start over. */
  restart?: boolean;
  /** What to do about a changed spec, as the command says it (its flag for `restart`). */
  changedSpecFix?: string;
  ui: StageUi;
  logger: Logger;
  /** Loads the services over the run's store (the caller knows the service packages; this one does not). */
  services(host: InProcessHost): Promise<InProcessServices>;
}

export async function runInProcess(o: InProcessRunOptions): Promise<RunSummary> {
  await mkdir(o.out, { recursive: true });
  const roots = await localRunRoots(o.run.spec, o.out);
  // nats: true lets nats-obj:// URIs through; they go to the directory store, never to a NATS server.
  const sandbox = ArtifactSandbox.confined({
    roots,
    nats: true,
    s3: s3ConfiguredInEnv(process.env),
    // A local run is the user's own: hf:// models come from (and go into) the user's Hugging Face cache.
    hf: true,
  });
  const store = new ArtifactRouter(null, sandbox, new DirectoryObjectStore(join(o.out, 'objects')));
  const ref = { namespace: o.run.metadata.namespace ?? 'default', name: o.run.metadata.name };
  const state = fileRunState(join(o.out, 'state'), ref);
  const { ref: runRef, phase } = await startRunRecord({
    run: o.run,
    state,
    store,
    restart: o.restart === true,
    ...(o.changedSpecFix ? { changedSpecFix: o.changedSpecFix } : {}),
    logger: o.logger,
  });
  const services = await o.services({ store, sandbox, workDir: join(o.out, 'work') });
  try {
    const summary = await reconcileRun({
      run: runRef,
      spec: o.run.spec,
      deps: { store, logger: o.logger },
      exec: inProcessShardExecutor({
        store,
        logger: o.logger,
        handlers: handlersByToken(services.handlers),
      }),
      state,
      ui: o.ui,
      // One shard at a time here; the shard count (at least this many) does not change any figure.
      workers: 1,
    });
    await writeRunOutputs(store, summary, o.out);
    await phase('Succeeded');
    return summary;
  } catch (err) {
    await phase('Failed', (err as Error).message).catch(() => {});
    throw err;
  } finally {
    await services.stop();
  }
}
