/**
 * One training job from plan to stored model: fetch the models (nats-obj:// into the digest-keyed model
 * cache, file:// in place) and the dataset, train with the ML engine (reference log-probs computed once per
 * dataset inside it), and store the result atomically: runTraining's own rename for a file:// output, or a
 * local directory published with its manifest last for nats-obj://.
 *
 * The local working directory is keyed by the output URI, so a job run again for the same output (a
 * retried start, a redelivered shard) resumes from the `<out>.partial` checkpoint a cancelled or killed run
 * left behind.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTraining } from '@rlhf/ml-engine';
import { type ArtifactStore, parseArtifactUri, RlhfError } from '@rlhf/platform';
import type { ModelRef } from '@rlhf/proto';
import { type JobReporter, localModelDir, publishModelDir, trainingMetricsOf } from '@rlhf/service-kit';
import { asField, checkedModelVersion } from './input-checks.js';
import type { PlannedModel, TrainingPlan } from './training-plan.js';

export interface TrainJobDeps {
  store: ArtifactStore;
  /** Where nats-obj:// models are unpacked (shared with other services' caches). */
  cacheDir: string;
  /** Per-output working directories: downloaded data, nats-obj outputs before publishing, checkpoints. */
  workDir: string;
  /** Resumable checkpoint every this many optimizer steps (0: none). */
  saveEvery: number;
}

async function fetchModel(deps: TrainJobDeps, m: PlannedModel): Promise<string> {
  await checkedModelVersion(deps.store, m);
  return asField(`${m.field}.uri`, () => localModelDir(deps.store, m.ref.uri, deps.cacheDir));
}

export async function runTrainingJob(
  plan: TrainingPlan,
  deps: TrainJobDeps,
  signal: AbortSignal,
  report: JobReporter,
): Promise<ModelRef> {
  report.phase('fetching models');
  const modelDir = await fetchModel(deps, plan.policy);
  const referenceDir =
    plan.reference && plan.reference.ref.uri !== plan.policy.ref.uri
      ? await fetchModel(deps, plan.reference)
      : undefined;

  const jobDir = join(deps.workDir, createHash('sha256').update(plan.output.uri).digest('hex').slice(0, 24));
  await mkdir(jobDir, { recursive: true });
  report.phase('fetching the dataset');
  const data = parseArtifactUri(plan.dataset.uri, plan.dataset.field);
  let dataFile: string;
  if (data.scheme === 'file') dataFile = data.path;
  else {
    dataFile = join(jobDir, 'data.jsonl');
    await writeFile(dataFile, await asField(plan.dataset.field, () => deps.store.get(plan.dataset.uri)));
  }
  const out = parseArtifactUri(plan.output.uri, plan.output.field);
  const outDir = out.scheme === 'file' ? out.path : join(jobDir, 'model');
  if (signal.aborted) throw new RlhfError('CANCELLED', 'cancelled before training started');

  report.phase(plan.objective === 'dpo' ? 'computing reference log-probs, then training' : 'training');
  const result = await runTraining({
    modelDir,
    ...(referenceDir ? { referenceDir } : {}),
    dataFile,
    outDir,
    options: plan.options,
    overwrite: true,
    saveEvery: deps.saveEvery,
    signal,
    onStep: (r) => report.step(trainingMetricsOf(r, plan.options)),
    onInfo: (message) => report.phase(message),
  });
  if (result.stopped)
    throw new RlhfError('CANCELLED', 'training stopped; its checkpoint is kept to resume from', {
      fix: 'start the same job again to resume',
    });

  let digest = '';
  if (out.scheme === 'nats-obj') {
    report.phase('publishing the model');
    digest = await asField(plan.output.field, () => publishModelDir(deps.store, outDir, plan.output.uri));
  }
  await rm(jobDir, { recursive: true, force: true });
  return { uri: plan.output.uri, revision: '', digest };
}
