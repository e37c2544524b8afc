/**
 * The stage pods' side of a train stage handed to a Kubeflow TrainJob (spec.engines.train.type trainjob).
 * The controller runs two stage Jobs around the TrainJob, both `rlhf stage train` with RLHF_TRAINJOB_DIR
 * naming the iteration's directory on the run's shared volume (trainjob-layout.ts in @rlhf/workflow):
 *
 * - prepare (`--trainjob-step prepare`): the policy the iteration starts from, pulled from the store and
 *   exported as a Hugging Face checkpoint, and the iteration's pairs in TRL's preference format. It writes
 *   no record: the train stage is not done until its checkpoint is back.
 * - import (the train stage itself): the checkpoint `trl dpo` saved, imported as a model directory and
 *   stored at the stage's output URI, the same place and record the built-in trainer writes, so evaluate
 *   and the next iteration read it unchanged. `trl dpo` keeps its per-step losses in its log only, so the
 *   record's loss and accuracy are null.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  exportHfCheckpoint,
  importHfCheckpoint,
  loadTokenizer,
  type PairRecord,
  parsePairRecord,
} from '@rlhf/ml-engine';
import { type ArtifactStore, invalidArgument, RlhfError } from '@rlhf/platform';
import { publishModelDir, saveModelFromArtifact } from '@rlhf/service-kit';
import {
  type TrainInputs,
  type TrainJobPaths,
  type TrainResult,
  trainJobDirEnv,
  trainJobPaths,
} from '@rlhf/workflow';
import { readJsonl } from './jsonl-artifacts.js';
import { trlPreferenceJsonl, trlPreferenceRow } from './trl-pairs.js';

/** The iteration's TrainJob files from RLHF_TRAINJOB_DIR; refused when the controller did not set it. */
export function trainJobPathsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): TrainJobPaths {
  const dir = env[trainJobDirEnv];
  if (!dir?.startsWith('/'))
    throw invalidArgument(
      'spec.engines.train.type',
      `trainjob: this train stage has no TrainJob directory (${trainJobDirEnv} is ${dir ? `"${dir}", not an absolute path` : 'not set'}); the controller runs the TrainJob and sets it for the stage Jobs around it`,
      'run on a cluster with the controller, or set spec.engines.train.type: builtin',
    );
  return trainJobPaths(dir);
}

/** Writes the policy as a Hugging Face checkpoint and the pairs as `<pairs>/train.jsonl`; returns the pair count. */
export async function writeTrainJobInputs(
  store: ArtifactStore,
  inputs: Pick<TrainInputs, 'base' | 'dataset'>,
  paths: TrainJobPaths,
): Promise<number> {
  // A retried prepare (or a TrainJob attempt after a failed one) starts from a clean directory: no stale
  // checkpoint of an earlier attempt may be imported.
  await rm(paths.dir, { recursive: true, force: true });
  await mkdir(paths.pairs, { recursive: true });
  await saveModelFromArtifact(store, inputs.base, paths.policy, { overwrite: true });
  await exportHfCheckpoint(paths.policy, paths.checkpoint, { overwrite: true });
  const tok = await loadTokenizer(paths.policy);
  const records = await readJsonl<PairRecord>(store, inputs.dataset, (v, where) => parsePairRecord(v, where));
  if (records.length === 0)
    throw new RlhfError('FAILED_PRECONDITION', `${inputs.dataset} holds no pairs to train on`, {
      field: 'pairs',
      fix: 'an iteration without pairs keeps its policy; the controller runs no TrainJob for it',
    });
  await writeFile(
    join(paths.pairs, 'train.jsonl'),
    trlPreferenceJsonl(records.map((r) => trlPreferenceRow(tok, r))),
  );
  return records.length;
}

/** The checkpoint `trl dpo` saved, imported and stored at `output`. */
export async function importTrainJobOutput(
  store: ArtifactStore,
  paths: TrainJobPaths,
  output: string,
): Promise<TrainResult> {
  const imported = join(paths.dir, 'imported');
  try {
    await importHfCheckpoint(paths.output, imported, { overwrite: true });
  } catch (err) {
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `the TrainJob's checkpoint at ${paths.output} cannot be imported: ${(err as Error).message}`,
      {
        field: 'spec.engines.train',
        fix: "check the TrainJob's trainer log (kubectl logs) for where it stopped",
      },
    );
  }
  await publishModelDir(store, imported, output);
  await rm(imported, { recursive: true, force: true });
  return { model: output, loss: null, accuracy: null };
}
