/** The name `rlhf serve` takes and its one-line summary, in a module that loads nothing (`@rlhf/reward-model/info`). */
export const serviceInfo = {
  name: 'reward-model',
  summary:
    'Scores responses with a Bradley-Terry reward model (with a length penalty) and trains reward models.',
} as const;
