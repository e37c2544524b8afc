/**
 * Optimizer state as named tensors plus string metadata, the shape a safetensors file holds, so a
 * checkpoint can store moments next to the weights and a resumed run continues bit for bit. Tensor names
 * are `<slot>/<parameter>` (`m/model.norm.weight`); HF parameter names never contain a slash.
 */
import { invalidInput } from '../engine-error.js';
import type { AdamWState } from './adamw.js';
import type { ParamMap } from './param-map.js';
import type { SgdState } from './sgd.js';

export interface StateTensors {
  tensors: ParamMap;
  metadata: Record<string, string>;
}

function toTensors(kind: string, step: number, slots: Record<string, ParamMap>): StateTensors {
  const tensors: ParamMap = new Map();
  for (const [slot, values] of Object.entries(slots)) {
    for (const [name, array] of values) tensors.set(`${slot}/${name}`, array);
  }
  return { tensors, metadata: { optimizer: kind, step: String(step) } };
}

function fromTensors(
  expectedKind: string,
  slotNames: readonly string[],
  { tensors, metadata }: StateTensors,
): { step: number; slots: Map<string, ParamMap> } {
  if (metadata.optimizer !== expectedKind) {
    throw invalidInput(
      `optimizer state was saved by ${JSON.stringify(metadata.optimizer)}, not ${expectedKind}`,
      'optimizer',
      `resume with the optimizer the run started with, or start the optimizer afresh`,
    );
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw invalidInput(`optimizer state has step ${JSON.stringify(metadata.step)}`, 'step');
  }
  const slots = new Map(slotNames.map((s) => [s, new Map<string, Float32Array>()]));
  for (const [key, array] of tensors) {
    const cut = key.indexOf('/');
    const slot = slots.get(key.slice(0, cut));
    if (cut < 0 || slot === undefined) {
      throw invalidInput(
        `optimizer state tensor ${JSON.stringify(key)} is not one of ${slotNames.join(', ')}`,
        key,
      );
    }
    slot.set(key.slice(cut + 1), array);
  }
  return { step, slots };
}

export function adamWStateToTensors(state: AdamWState): StateTensors {
  return toTensors('adamw', state.step, { m: state.m, v: state.v });
}

export function adamWStateFromTensors(saved: StateTensors): AdamWState {
  const { step, slots } = fromTensors('adamw', ['m', 'v'], saved);
  return { step, m: slots.get('m')!, v: slots.get('v')! };
}

export function sgdStateToTensors(state: SgdState): StateTensors {
  return toTensors('sgd', state.step, { momentum: state.momentum });
}

export function sgdStateFromTensors(saved: StateTensors): SgdState {
  const { step, slots } = fromTensors('sgd', ['momentum'], saved);
  return { step, momentum: slots.get('momentum')! };
}
