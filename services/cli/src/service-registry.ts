/** The services `rlhf serve` can run, by the name users type. */
import { dpoTrainerService } from '@rlhf/dpo-trainer';
import type { ServiceModule } from '@rlhf/platform';
import { policyGeneratorService } from '@rlhf/policy-generator';
import { preferenceModelService } from '@rlhf/preference-model';
import { rewardModelService } from '@rlhf/reward-model';

export const serviceModules: ServiceModule[] = [
  policyGeneratorService,
  rewardModelService,
  preferenceModelService,
  dpoTrainerService,
];

export function serviceByName(name: string): ServiceModule | undefined {
  return serviceModules.find((s) => s.name === name);
}
