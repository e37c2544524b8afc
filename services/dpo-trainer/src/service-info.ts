/** The name `rlhf serve` takes and its one-line summary, in a module that loads nothing (`@rlhf/dpo-trainer/info`). */
export const serviceInfo = {
  name: 'dpo-trainer',
  summary: 'Runs DPO and SFT training jobs with progress, writing new policy checkpoints.',
} as const;
