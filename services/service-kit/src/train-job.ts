/**
 * One training job from plan to stored model, for every objective: fetch the models (nats-obj:// into the
 * digest-keyed model cache, file:// in place) and the datasets, train with the ML engine, and store the
 * result atomically.
 *
 * - A reward model may start from a policy: its LM head is replaced by a fresh scalar head (seeded by the
 *   job's seed, backbone weights copied), as the reference task's setup does, written once into the job's
 *   working directory.
 * - With a held-out dataset (reward and preference models), the trained model is scored on it after the
 *   last step: `eval_loss` and `eval_accuracy` (plus `eval_pairs`) go out as one more progress event of the
 *   last step (TrainingMetrics.extra), and into `metrics.json` inside the model directory.
 * - The model is built in the working directory (its checkpoint beside it), then published with its
 *   manifest last (nats-obj://) or copied whole into a new platform-made directory renamed into place
 *   (file://, platform-dirs.ts): an existing output is replaced only when the platform made it.
 *
 * The local working directory is keyed by the output URI, so a job run again for the same output (a
 * retried start, a redelivered shard) resumes from the checkpoint a cancelled or killed run left behind.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  architectureOf,
  chatPrompt,
  comparePairs,
  headTypeOf,
  inferenceSessionOptions,
  initWeights,
  type LoadedModelDir,
  loadDataset,
  loadModelDir,
  OrtSession,
  parseLlamaConfig,
  parsePairRecord,
  preferencePrompt,
  promptText,
  Rng,
  runTraining,
  type StepReport,
  saveModelDir,
  scoreResponses,
  type TextOrIds,
} from '@rlhf/ml-engine';
import { type ArtifactStore, asRlhfError, RlhfError } from '@rlhf/platform';
import type { ModelRef, TrainingMetrics } from '@rlhf/proto';
import type { JobReporter } from './job-manager.js';
import { publishModelDir } from './model-artifacts.js';
import { acquireModelDir, type CacheLog, type HeldModelDir } from './model-download-cache.js';
import { writePlatformDir } from './platform-dirs.js';
import { checkPlannedSteps, countJsonlRecords } from './step-bound.js';
import { asField, checkedModelVersion } from './train-inputs.js';
import { trainingMetricsOf } from './training-metrics.js';
import type { PlannedArtifact, PlannedModel, TrainingPlan } from './training-plan.js';

export interface TrainJobDeps {
  store: ArtifactStore;
  /** Where nats-obj:// models are unpacked (shared with other services' caches). */
  cacheDir: string;
  /** The download cache's size limit in bytes (default 20 GiB). */
  cacheMaxBytes?: number;
  /** Where the download cache reports refetched and pruned entries. */
  logger?: CacheLog;
  /** Per-output working directories: downloaded data, nats-obj outputs before publishing, checkpoints. */
  workDir: string;
  /** Resumable checkpoint every this many optimizer steps (0: none). */
  saveEvery: number;
  /** Most optimizer steps a job may take; a job whose epochs over its data take more fails before training. */
  maxSteps?: number;
}

/** The file written next to the weights when a job evaluates on held-out data. */
export const TRAINING_METRICS_FILE = 'metrics.json';

/** What `<output>/metrics.json` holds. */
export interface TrainingMetricsFile {
  objective: TrainingPlan['objective'];
  steps: number;
  examples: number;
  /** The last step's figures (loss, accuracy, ...). */
  train: Record<string, number>;
  /** Held-out figures: eval_loss, eval_accuracy, eval_pairs (and eval_skipped for a PM). */
  eval: Record<string, number>;
  evalDataset: string;
}

/** The model's local directory, leased in the download cache until the job ends (`held`). */
async function fetchModel(deps: TrainJobDeps, m: PlannedModel, held: HeldModelDir[]): Promise<string> {
  await checkedModelVersion(deps.store, m);
  const h = await asField(`${m.field}.uri`, () =>
    acquireModelDir(deps.store, m.ref.uri, deps.cacheDir, {
      ...(deps.cacheMaxBytes === undefined ? {} : { maxBytes: deps.cacheMaxBytes }),
      ...(deps.logger ? { logger: deps.logger } : {}),
    }),
  );
  held.push(h);
  return h.dir;
}

async function fetchData(
  deps: TrainJobDeps,
  d: PlannedArtifact,
  jobDir: string,
  name: string,
): Promise<string> {
  const loc = await deps.store.resolve(d.uri, d.field, 'read');
  if (loc.scheme === 'file') return loc.path;
  const file = join(jobDir, name);
  await writeFile(file, await asField(d.field, () => deps.store.get(d.uri)));
  return file;
}

/** An engine error about the local copy of a dataset, told in the request's terms (field and URI). */
function aboutDataset(err: unknown, localFile: string, d: PlannedArtifact): unknown {
  const known = asRlhfError(err);
  if (!known?.field || !(known.field === localFile || known.field.startsWith(`${localFile}:`))) return err;
  return new RlhfError(known.code, known.message.split(localFile).join(d.uri), {
    field: d.field,
    ...(known.fix === undefined ? {} : { fix: known.fix }),
    cause: err,
  });
}

/**
 * The reward model's starting point: the model itself when it has a scalar head, otherwise its backbone
 * under a fresh scalar head, written into the job directory (deterministic, so a resumed job finds the
 * same starting model and its checkpoint still applies).
 */
async function scalarHeadStart(modelDir: string, jobDir: string, seed: number): Promise<string> {
  const base = await loadModelDir(modelDir);
  if (headTypeOf(base.config) === 'scalar') return modelDir;
  const config = parseLlamaConfig({
    ...base.config,
    architectures: [architectureOf.scalar],
    num_labels: 1,
  });
  const weights = initWeights(config, new Rng(seed));
  for (const [name, w] of base.weights) if (weights.has(name)) weights.set(name, w.slice());
  const out = join(jobDir, 'base-scalar');
  const chatTemplate = {
    ...(base.chatTemplate === undefined ? {} : { chatTemplate: base.chatTemplate }),
    ...(base.endTokenIds ? { endTokenIds: base.endTokenIds } : {}),
  };
  await saveModelDir(
    out,
    { config, tokenizerJson: base.tokenizerJson, weights, ...chatTemplate },
    { overwrite: true },
  );
  return out;
}

/** Text that encodes back to the ids (a chat prompt's template BOS is put back by the tokenizer's rule). */
function asText(model: LoadedModelDir, t: TextOrIds): string {
  return 'text' in t ? t.text : promptText(model.tokenizer, t.ids);
}

const EVAL_BATCH = 32;

/** Held-out loss and accuracy of a trained reward model (BT loss) or preference model (debiased). */
export async function evaluatePairModel(
  objective: 'rm' | 'pm',
  modelDir: string,
  evalFile: string,
): Promise<Record<string, number>> {
  const model = await loadModelDir(modelDir);
  const pairs = await loadDataset(evalFile, (v, where) =>
    parsePairRecord(v, where, { vocabSize: model.config.vocab_size, chat: chatPrompt(model) }),
  );
  const triples = pairs.map((p) => ({
    prompt: asText(model, p.prompt),
    chosen: asText(model, p.chosen),
    rejected: asText(model, p.rejected),
  }));
  const session = await OrtSession.create(new Uint8Array(await readFile(join(modelDir, 'model.onnx'))), {
    ...inferenceSessionOptions,
    externalDataDir: modelDir,
  });
  try {
    let loss = 0;
    let right = 0;
    let counted = 0;
    if (objective === 'rm') {
      const scored = await scoreResponses(
        model,
        session,
        triples.map((t) => ({ prompt: t.prompt, responses: [t.chosen, t.rejected] })),
        0,
        EVAL_BATCH * 2,
      );
      for (const s of scored) {
        const margin = (s.rewards[0] as number) - (s.rewards[1] as number);
        loss += Math.log1p(Math.exp(-margin)); // -log sigmoid(margin)
        if (margin > 0) right++;
        counted++;
      }
      return { eval_loss: loss / counted, eval_accuracy: right / counted, eval_pairs: counted };
    }
    // A comparison longer than the model's context cannot be judged as trained (training cut its middle);
    // such pairs are counted as skipped rather than failing the job.
    const tok = model.tokenizer;
    const fits = (t: (typeof triples)[number]) =>
      1 + tok.encode(preferencePrompt(t.prompt, t.chosen, t.rejected)).length <=
        model.config.max_position_embeddings &&
      1 + tok.encode(preferencePrompt(t.prompt, t.rejected, t.chosen)).length <=
        model.config.max_position_embeddings;
    const usable = triples.filter(fits);
    for (let i = 0; i < usable.length; i += EVAL_BATCH) {
      const batch = usable
        .slice(i, i + EVAL_BATCH)
        .map((t) => ({ prompt: t.prompt, a: t.chosen, b: t.rejected }));
      for (const c of await comparePairs(model, session, batch)) {
        loss += -Math.log(Math.max(c.probABetter, 1e-12));
        if (c.probABetter > 0.5) right++;
        counted++;
      }
    }
    const skipped = triples.length - usable.length;
    if (counted === 0)
      return { eval_loss: Number.NaN, eval_accuracy: Number.NaN, eval_pairs: 0, eval_skipped: skipped };
    return {
      eval_loss: loss / counted,
      eval_accuracy: right / counted,
      eval_pairs: counted,
      eval_skipped: skipped,
    };
  } finally {
    await session.dispose();
  }
}

async function copyDirInto(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      await mkdir(join(to, entry.name));
      await copyDirInto(join(from, entry.name), join(to, entry.name));
    } else if (entry.isFile()) await copyFile(join(from, entry.name), join(to, entry.name));
  }
}

export async function runTrainingJob(
  plan: TrainingPlan,
  deps: TrainJobDeps,
  signal: AbortSignal,
  report: JobReporter,
): Promise<ModelRef> {
  const held: HeldModelDir[] = [];
  try {
    return await trainHeld(plan, deps, signal, report, held);
  } finally {
    for (const h of held) await h.release();
  }
}

async function trainHeld(
  plan: TrainingPlan,
  deps: TrainJobDeps,
  signal: AbortSignal,
  report: JobReporter,
  held: HeldModelDir[],
): Promise<ModelRef> {
  report.phase('fetching models');
  let modelDir = await fetchModel(deps, plan.base, held);
  const referenceDir =
    plan.reference && plan.reference.ref.uri !== plan.base.ref.uri
      ? await fetchModel(deps, plan.reference, held)
      : undefined;

  const jobDir = join(deps.workDir, createHash('sha256').update(plan.output.uri).digest('hex').slice(0, 24));
  await mkdir(jobDir, { recursive: true });
  if (plan.objective === 'rm') {
    report.phase('preparing the scalar head');
    modelDir = await scalarHeadStart(modelDir, jobDir, plan.options.seed);
  }
  report.phase('fetching the dataset');
  const dataFile = await fetchData(deps, plan.dataset, jobDir, 'data.jsonl');
  if (deps.maxSteps !== undefined && plan.options.maxSteps === undefined)
    checkPlannedSteps(
      plan.options,
      await countJsonlRecords(dataFile),
      deps.maxSteps,
      plan.hyperparametersField ?? 'hyperparameters',
    );
  const evalFile = plan.eval ? await fetchData(deps, plan.eval, jobDir, 'eval.jsonl') : null;
  const out = await deps.store.resolve(plan.output.uri, plan.output.field, 'write');
  // Built in the job directory (where its checkpoint lives too), then published or renamed into place.
  const outDir = join(jobDir, 'model');
  if (signal.aborted) throw new RlhfError('CANCELLED', 'cancelled before training started');

  report.phase(plan.objective === 'dpo' ? 'computing reference log-probs, then training' : 'training');
  let last: StepReport | undefined;
  let lastMetrics: TrainingMetrics | undefined;
  const result = await runTraining({
    modelDir,
    ...(referenceDir ? { referenceDir } : {}),
    dataFile,
    outDir,
    options: plan.options,
    overwrite: true,
    // The job directory is keyed by the output URI only: a checkpoint left by another run that wrote the
    // same URI (an edited spec run again with --restart) is stale, not an error.
    foreignState: 'discard',
    saveEvery: deps.saveEvery,
    signal,
    onStep: (r) => {
      last = r;
      lastMetrics = trainingMetricsOf(r, plan.options);
      report.step(lastMetrics);
    },
    onInfo: (message) => report.phase(message),
  }).catch((err: unknown) => {
    throw aboutDataset(err, dataFile, plan.dataset);
  });
  if (result.stopped)
    throw new RlhfError('CANCELLED', 'training stopped; its checkpoint is kept to resume from', {
      fix: 'start the same job again to resume',
    });

  if (plan.eval && evalFile && (plan.objective === 'rm' || plan.objective === 'pm')) {
    report.phase('evaluating on the held-out pairs');
    const figures = await evaluatePairModel(plan.objective, outDir, evalFile).catch((err: unknown) => {
      throw aboutDataset(err, evalFile, plan.eval as PlannedArtifact);
    });
    if (lastMetrics)
      report.step({ ...lastMetrics, extra: { ...lastMetrics.extra, ...figures }, time: new Date() });
    const file: TrainingMetricsFile = {
      objective: plan.objective,
      steps: last?.step ?? 0,
      examples: result.examples,
      train: { ...(last?.metrics ?? {}) },
      eval: figures,
      evalDataset: plan.eval.uri,
    };
    await writeFile(join(outDir, TRAINING_METRICS_FILE), `${JSON.stringify(file, null, 2)}\n`);
  }

  let digest = '';
  if (out.scheme !== 'file') {
    report.phase('publishing the model');
    digest = await asField(plan.output.field, () => publishModelDir(deps.store, outDir, plan.output.uri));
  } else {
    report.phase('writing the model');
    await writePlatformDir(out.path, plan.output.field, plan.output.uri, (tmp) => copyDirInto(outDir, tmp));
  }
  await rm(jobDir, { recursive: true, force: true });
  return { uri: plan.output.uri, revision: '', digest };
}

/** Reads `<dir>/metrics.json` of a trained model directory, or null when it has none. */
export async function readTrainingMetricsFile(dir: string): Promise<TrainingMetricsFile | null> {
  const path = join(dir, TRAINING_METRICS_FILE);
  if (!(await stat(path).catch(() => null))) return null;
  return JSON.parse(await readFile(path, 'utf8')) as TrainingMetricsFile;
}
