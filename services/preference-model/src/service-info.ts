/** The name `rlhf serve` takes and its one-line summary, in a module that loads nothing (`@rlhf/preference-model/info`). */
export const serviceInfo = {
  name: 'preference-model',
  summary:
    'Judges P(a > b) with a pairwise preference model, debiased over both orders; ranks by tournament; trains preference models.',
} as const;
