/**
 * Resumable training state next to a checkpoint: `training_state/optimizer.safetensors` (moments, keyed
 * `<slot>/<parameter>`, with the optimizer kind and step as metadata) and `training_state/trainer_state.json`
 * (step and a fingerprint of the run's data and options, so a resume never mixes two different runs).
 * Data order needs no saved RNG: batch k of epoch e is a function of (seed, e) alone.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import { invalidInput } from '../engine-error.js';
import {
  adamWStateFromTensors,
  adamWStateToTensors,
  sgdStateFromTensors,
  sgdStateToTensors,
} from '../optim/optimizer-state.js';
import type { TrainerState } from './trainer.js';

export const TRAINING_STATE_DIR = 'training_state';

export async function writeTrainingState(
  modelDir: string,
  state: TrainerState,
  fingerprint: string,
): Promise<void> {
  const dir = join(modelDir, TRAINING_STATE_DIR);
  await mkdir(dir, { recursive: true });
  const saved =
    state.optimizer.kind === 'adamw'
      ? adamWStateToTensors(state.optimizer.state)
      : sgdStateToTensors(state.optimizer.state);
  const tensors = new Map([...saved.tensors].map(([name, data]) => [name, { shape: [data.length], data }]));
  await writeSafetensors(join(dir, 'optimizer.safetensors'), tensors, saved.metadata);
  await writeFile(
    join(dir, 'trainer_state.json'),
    `${JSON.stringify({ step: state.step, fingerprint }, null, 2)}\n`,
  );
}

/**
 * The saved state, or null when the directory has none. State of a different run throws, or with
 * `discardForeign` counts as none (a service's private scratch directory: the next checkpoint replaces it).
 */
export async function readTrainingState(
  modelDir: string,
  fingerprint: string,
  discardForeign = false,
): Promise<TrainerState | null> {
  const dir = join(modelDir, TRAINING_STATE_DIR);
  let meta: { step: number; fingerprint: string };
  try {
    meta = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf8')) as typeof meta;
  } catch {
    return null;
  }
  if (meta.fingerprint !== fingerprint) {
    if (discardForeign) return null;
    throw invalidInput(
      `${dir} holds the state of a different training run (other data or options)`,
      dir,
      'remove it to start afresh, or rerun with the original arguments',
    );
  }
  const file = await readSafetensors(join(dir, 'optimizer.safetensors'));
  const saved = { tensors: new Map([...file.tensors].map(([k, t]) => [k, t.data])), metadata: file.metadata };
  const optimizer: TrainerState['optimizer'] =
    saved.metadata.optimizer === 'sgd'
      ? { kind: 'sgd', state: sgdStateFromTensors(saved) }
      : { kind: 'adamw', state: adamWStateFromTensors(saved) };
  return { step: meta.step, optimizer };
}
