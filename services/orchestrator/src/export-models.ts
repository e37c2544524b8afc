/**
 * The models a finished run leaves for its user, copied out of the artifact store into `<out>/models` as
 * standalone model directories: `policy` (the best iteration's), `initial-policy` (pi_0, when it is not the
 * best), and `reward-model` / `preference-model` when the run's setup trained them. Each is replaced
 * atomically, so running the command again (a resumed or repeated run) leaves either the old copy or the new
 * one, never a mix.
 */
import { join } from 'node:path';
import type { ArtifactStore } from '@rlhf/platform';
import { saveModelFromArtifact } from '@rlhf/service-kit';
import type { RunSummary } from '@rlhf/workflow';

/** A model a run leaves behind: its directory name under `<out>/models` and its artifact URI. */
export interface RunModel {
  name: 'policy' | 'initial-policy' | 'reward-model' | 'preference-model';
  uri: string;
}

export function runModels(summary: RunSummary): RunModel[] {
  const models: RunModel[] = [{ name: 'policy', uri: summary.bestPolicy }];
  // pi_0, the baseline of every comparison (`rlhf eval --baseline`), unless it is the best policy itself.
  if (summary.initial.policy !== summary.bestPolicy)
    models.push({ name: 'initial-policy', uri: summary.initial.policy });
  if (summary.rewardModel?.model) models.push({ name: 'reward-model', uri: summary.rewardModel.model });
  if (summary.preferenceModel?.model)
    models.push({ name: 'preference-model', uri: summary.preferenceModel.model });
  return models;
}

/** Copies the run's models into `<modelsDir>/<name>`; returns the directories written, by name. */
export async function exportRunModels(
  store: ArtifactStore,
  summary: RunSummary,
  modelsDir: string,
): Promise<Record<string, string>> {
  const written: Record<string, string> = {};
  for (const m of runModels(summary)) {
    const dir = join(modelsDir, m.name);
    await saveModelFromArtifact(store, m.uri, dir, { overwrite: true });
    written[m.name] = dir;
  }
  return written;
}
