/**
 * The services `rlhf serve` can run, by the name users type. Each entry's name and summary come from the
 * service's `info` module, which loads nothing; the service itself is imported only when it is served, so
 * `rlhf --help` and a worker serving one service do not load the other three.
 */
import { serviceInfo as dpoTrainer } from '@rlhf/dpo-trainer/info';
import type { ServiceModule } from '@rlhf/platform';
import { serviceInfo as policyGenerator } from '@rlhf/policy-generator/info';
import { serviceInfo as preferenceModel } from '@rlhf/preference-model/info';
import { serviceInfo as rewardModel } from '@rlhf/reward-model/info';

export interface ServiceEntry {
  name: string;
  summary: string;
  load(): Promise<ServiceModule>;
}

export const serviceEntries: readonly ServiceEntry[] = [
  { ...policyGenerator, load: async () => (await import('@rlhf/policy-generator')).policyGeneratorService },
  { ...rewardModel, load: async () => (await import('@rlhf/reward-model')).rewardModelService },
  { ...preferenceModel, load: async () => (await import('@rlhf/preference-model')).preferenceModelService },
  { ...dpoTrainer, load: async () => (await import('@rlhf/dpo-trainer')).dpoTrainerService },
];

/** The service a name stands for, loaded; undefined for a name that is none. */
export async function loadService(name: string): Promise<ServiceModule | undefined> {
  return serviceEntries.find((s) => s.name === name)?.load();
}

/** Every service, loaded (tests, and anything that needs them all). */
export function loadAllServices(): Promise<ServiceModule[]> {
  return Promise.all(serviceEntries.map((s) => s.load()));
}
