/** The experiment's variant letters, in a module that loads nothing (`@rlhf/orchestrator/variant-names`). */
export const experimentVariants = ['a', 'b', 'c', 'o', 'g', 'p'] as const;
export type Variant = (typeof experimentVariants)[number];
