/**
 * metav1.Condition bookkeeping: one condition per type, lastTransitionTime moves only when the status
 * does, and every condition carries the generation it was computed from.
 */
import type { Condition } from './resources.js';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export function setConditions(
  current: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  generation: number,
  now: string,
): Condition[] {
  const out = new Map((current ?? []).map((c) => [c.type, c]));
  for (const c of next) {
    const old = out.get(c.type);
    out.set(c.type, {
      ...c,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
      observedGeneration: generation,
    });
  }
  return [...out.values()];
}

export function conditionOf(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** metav1.Condition's (and the CRD's) limit on a message: longer ones make the API server refuse the status. */
export const conditionMessageLimit = 32768;

/** `message`, cut to the condition limit with a note of how much was left out. */
export function boundedMessage(message: string): string {
  if (message.length <= conditionMessageLimit) return message;
  // 64 characters leave room for the note.
  const kept = message.slice(0, conditionMessageLimit - 64);
  return `${kept} ... (${message.length - kept.length} more characters)`;
}

/** The conditions of a run that is working on a stage: Progressing says on what (`reason`, `message`). */
export function runningConditions(reason: string, message: string): ConditionInput[] {
  return [
    { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'spec accepted; stage Jobs are running' },
    { type: 'Progressing', status: 'True', reason, message },
    { type: 'Succeeded', status: 'False', reason: 'Running', message: '' },
    { type: 'Failed', status: 'False', reason: 'Running', message: '' },
  ];
}
