/**
 * A task's oracle: its gold reward, its grammar check and how it counts words, for the stages that score
 * samples against a known reward (the EVALUATE stage's gold and win rate, a JUDGE of the gold type, the
 * length-penalty fit). Services name the oracle with a string (`gold_reward` in stage work), resolved here.
 */
import { goldReward, isGrammatical, wordCount } from './gold.js';

/** What a task supplies: its gold reward and grammar, when it has them (the reference task does). */
export interface TaskOracle {
  gold(prompt: string, completion: string, endedWithEos: boolean): number;
  grammatical(prompt: string, completion: string, endedWithEos: boolean): boolean;
  words(completion: string): number;
}

/** The reference task of docs/ARCHITECTURE.md: the gated AFINN gold over the movie-review grammar. */
export const sentimentOracle: TaskOracle = {
  gold: (prompt, completion, endedWithEos) => goldReward({ prompt, completion, endedWithEos }),
  grammatical: (prompt, completion, endedWithEos) => isGrammatical({ prompt, completion, endedWithEos }),
  words: wordCount,
};

const oracles: ReadonlyMap<string, TaskOracle> = new Map([
  ['sentiment', sentimentOracle],
  // The name stage_work.proto uses as its example of a built-in gold reward.
  ['reference-task', sentimentOracle],
]);

/** The names `taskOracle` knows. */
export const taskOracleNames: readonly string[] = [...oracles.keys()];

/**
 * An unknown oracle name. Shaped like the platform's errors (`code`, `field`, `fix`) so a service can turn
 * it into an INVALID_ARGUMENT naming the field; this package does not depend on the platform.
 */
export class UnknownTaskError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  readonly field: string;
  readonly fix: string;

  constructor(name: string, field: string) {
    super(`unknown task ${JSON.stringify(name)}; known: ${taskOracleNames.join(', ')}`);
    this.name = 'UnknownTaskError';
    this.field = field;
    this.fix = `use one of ${taskOracleNames.join(', ')}`;
  }
}

/** The oracle called `name`; `field` is where the name came from, for the error on an unknown name. */
export function taskOracle(name: string, field: string): TaskOracle {
  const oracle = oracles.get(name);
  if (!oracle) throw new UnknownTaskError(name, field);
  return oracle;
}
