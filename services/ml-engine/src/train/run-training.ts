/**
 * Training from files to a model directory, the unit of work behind `rlhf train` and the dpo-trainer
 * service: load the model, read and encode the dataset, train, and publish the result atomically.
 *
 * Resumable: every `saveEvery` steps a checkpoint (weights + optimizer state) replaces `<out>.partial`;
 * running the same command again continues from it, and since batch order is a function of (seed, epoch)
 * the resumed run ends with the same weights as an uninterrupted one.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelDir, saveModelDir } from '../checkpoint/model-dir.js';
import { loadDataset } from '../data/dataset-file.js';
import { parsePairRecord, parseSftRecord, type textOrIdsToIds } from '../data/records.js';
import { Rng } from '../random/rng.js';
import { chatPrompt } from '../tokenizer/chat-template.js';
import { promptText } from '../tokenizer/prompt-ids.js';
import {
  checkIds,
  type EncodeStats,
  type Example,
  encodePair,
  encodeSft,
  type PairExample,
} from './examples.js';
import { preferenceExample } from './preference-format.js';
import { type StepReport, type TrainObjective, type TrainOptions, trainModel } from './trainer.js';
import { readTrainingState, writeTrainingState } from './training-state.js';

export interface RunTrainingArgs {
  modelDir: string;
  /** DPO reference model (default: the starting policy itself). */
  referenceDir?: string;
  dataFile: string;
  outDir: string;
  options: TrainOptions;
  overwrite?: boolean;
  /**
   * A checkpoint in `<out>.partial` from other data or options: 'error' (the default, for a directory the
   * user named) or 'discard' (a service's scratch directory, where a stale one is just left over).
   */
  foreignState?: 'error' | 'discard';
  /** Checkpoint every N optimizer steps into `<out>.partial` (0: only the final model). */
  saveEvery?: number;
  onStep?: (r: StepReport) => void | Promise<void>;
  onInfo?: (message: string) => void;
  signal?: AbortSignal;
}

export interface RunTrainingResult {
  history: StepReport[];
  examples: number;
  truncated: number;
  /** The step a previous checkpoint let this run start from (0 when it started afresh). */
  resumedFromStep: number;
  stopped: boolean;
}

type Encoded = { kind: 'rows'; rows: Example[] } | { kind: 'pairs'; pairs: PairExample[] };

async function encodeDataset(
  objective: TrainObjective,
  file: string,
  m: Awaited<ReturnType<typeof loadModelDir>>,
  seed: number,
  stats: EncodeStats,
): Promise<Encoded> {
  const maxLen = m.config.max_position_embeddings;
  // Chat records ({"messages"}, or a prompt of messages) go through the model's chat template.
  const opts = { vocabSize: m.config.vocab_size, chat: chatPrompt(m) };
  if (objective === 'sft') {
    const records = await loadDataset(file, (v, where) => parseSftRecord(v, where, opts));
    const rows = records.map((r) => encodeSft(m.tokenizer, r, maxLen, stats));
    checkIds(rows, m.config.vocab_size, file);
    return { kind: 'rows', rows };
  }
  const pairs = await loadDataset(file, (v, where) => parsePairRecord(v, where, opts));
  if (objective === 'pm') {
    const rng = new Rng(seed);
    const text = (t: Parameters<typeof textOrIdsToIds>[0]): string =>
      'text' in t ? t.text : promptText(m.tokenizer, t.ids);
    const rows = pairs.map((p) =>
      preferenceExample(m.tokenizer, text(p.prompt), text(p.chosen), text(p.rejected), rng, maxLen),
    );
    return { kind: 'rows', rows };
  }
  const encoded = pairs.map((p) => encodePair(m.tokenizer, p, maxLen, stats));
  checkIds(
    encoded.flatMap((p) => [p.chosen, p.rejected]),
    m.config.vocab_size,
    file,
  );
  return { kind: 'pairs', pairs: encoded };
}

async function fingerprint(args: RunTrainingArgs): Promise<string> {
  const h = createHash('sha256');
  h.update(await readFile(args.dataFile));
  h.update(await readFile(join(args.modelDir, 'model.onnx')));
  h.update(JSON.stringify({ options: args.options, reference: args.referenceDir ?? null }));
  return h.digest('hex');
}

/** One JSON line per optimizer step (StepReport), every step of the run, in the model directory. */
export const TRAINING_LOG = 'training_log.jsonl';

export async function runTraining(args: RunTrainingArgs): Promise<RunTrainingResult> {
  const base = await loadModelDir(args.modelDir);
  const stats: EncodeStats = { truncated: 0 };
  const data = await encodeDataset(args.options.objective, args.dataFile, base, args.options.seed, stats);
  const reference = args.referenceDir ? (await loadModelDir(args.referenceDir)).weights : undefined;
  const print = await fingerprint(args);
  const partial = `${args.outDir}.partial`;

  let weights = base.weights;
  const resume = await readTrainingState(partial, print, args.foreignState === 'discard');
  // The steps' log so far: a checkpoint carries the lines of its steps, so a resumed run ends with the log
  // of every step, as an uninterrupted run does (readers average its last lines).
  let earlierLog = '';
  if (resume) {
    weights = (await loadModelDir(partial)).weights;
    earlierLog = await readFile(join(partial, TRAINING_LOG), 'utf8').catch(() => '');
    args.onInfo?.(`resuming from ${partial} at step ${resume.step}`);
  }
  const logLines: string[] = [];
  const logText = () => earlierLog + logLines.map((l) => `${l}\n`).join('');
  // The log goes in before the state: a checkpoint whose state is readable has the log of its steps.
  const checkpointTo = async (
    dir: string,
    w: typeof weights,
    state: Parameters<typeof writeTrainingState>[1],
  ) => {
    await saveModelDir(dir, contents(w), { overwrite: true });
    await writeFile(join(dir, TRAINING_LOG), logText());
    await writeTrainingState(dir, state, print);
  };
  const contents = (w: typeof weights) => ({
    config: base.config,
    tokenizerJson: base.tokenizerJson,
    weights: w,
    ...(base.chatTemplate === undefined ? {} : { chatTemplate: base.chatTemplate }),
    ...(base.endTokenIds ? { endTokenIds: base.endTokenIds } : {}),
  });
  const result = await trainModel({
    config: base.config,
    weights,
    padId: base.tokenizer.padId,
    examples: data.kind === 'rows' ? data.rows : data.pairs,
    options: args.options,
    // The reference stays the starting policy even when resuming from a later checkpoint.
    reference: reference ?? base.weights,
    ...(resume ? { resume } : {}),
    onStep: async (r) => {
      logLines.push(JSON.stringify(r));
      await args.onStep?.(r);
    },
    ...(args.signal ? { signal: args.signal } : {}),
    ...(args.saveEvery
      ? {
          checkpoint: {
            every: args.saveEvery,
            save: (w, state) => checkpointTo(partial, w, state),
          },
        }
      : {}),
  });
  if (result.stopped) await checkpointTo(partial, result.weights, result.state);
  else {
    await saveModelDir(args.outDir, contents(result.weights), { overwrite: args.overwrite === true });
    await writeTrainingState(args.outDir, result.state, print);
    await writeFile(join(args.outDir, TRAINING_LOG), logText());
    await rm(partial, { recursive: true, force: true });
  }
  return {
    history: result.history,
    examples: data.kind === 'rows' ? data.rows.length : data.pairs.length,
    truncated: stats.truncated,
    resumedFromStep: resume?.step ?? 0,
    stopped: result.stopped,
  };
}
