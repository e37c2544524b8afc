/**
 * The run record at the start of a local run, whichever executor runs it: a resumed run keeps its epoch
 * and must have the spec its finished stages were made with; a fresh start (restart) forgets the records
 * and removes the run's artifacts, since a stage counts as done when its outputs exist.
 */
import { type ArtifactStore, type Logger, RlhfError } from '@rlhf/platform';
import type { RlhfRun } from '@rlhf/run-spec';
import { type RunRecord, type RunRef, runBase, specDigest } from '@rlhf/workflow';
import type { RunState } from './run-state.js';

export interface StartedRun {
  ref: RunRef;
  /** Sets the run record's phase (and message), keeping its digest and epoch. */
  phase(phase: RunRecord['phase'], message?: string): Promise<void>;
}

export async function startRunRecord(o: {
  run: RlhfRun;
  state: RunState;
  /** The store the run's artifacts are in (for a restart to remove them). */
  store: ArtifactStore;
  restart: boolean;
  /** What to do about a changed spec, as the command says it (default: `rlhf run`'s --restart or a new name). */
  changedSpecFix?: string;
  logger: Logger;
}): Promise<StartedRun> {
  const { run, state } = o;
  const ref = { namespace: run.metadata.namespace ?? 'default', name: run.metadata.name };
  const digest = specDigest(run);
  const known = await state.runRecord();
  const epoch = (!o.restart && known?.epoch) || `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const runRef = { ...ref, epoch };
  if (o.restart) {
    await state.clear();
    const stale = await o.store.list(`${runBase(runRef)}/`);
    for (const uri of stale) await o.store.delete(uri);
    if (stale.length) o.logger.info({ artifacts: stale.length }, 'restart: removed the earlier artifacts');
  } else if (known && known.specDigest !== digest)
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `run ${runRef.name} was started with a different spec; its finished stages would not match this one`,
      {
        field: 'spec',
        fix:
          o.changedSpecFix ??
          'run it again with --restart to start over, or give the run another metadata.name',
      },
    );
  const phase = (p: RunRecord['phase'], message = '') =>
    state.setRun({ specDigest: digest, epoch, phase: p, message, updatedAt: new Date().toISOString() });
  await phase('Running');
  return { ref: runRef, phase };
}
