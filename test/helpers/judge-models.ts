/**
 * Tiny judges with a clear signal for service tests: reviews "the film was <word> ." where three words are
 * good and three bad. A reward model and a preference model trained on such pairs (through runTraining,
 * as the services train) learn in a second or two; a random-init policy stands in where only shapes matter.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  defaultTrainOptions,
  initWeights,
  parseLlamaConfig,
  Rng,
  runTraining,
  saveModelDir,
  type TokenizerJson,
  trainBpe,
} from '@rlhf/ml-engine';

export const goodWords = ['great', 'superb', 'lovely'];
export const badWords = ['awful', 'dull', 'boring'];

let tokenizer: TokenizerJson | undefined;

function judgeTokenizer(): TokenizerJson {
  const corpus = [...goodWords, ...badWords].flatMap((w) => [
    `the film was ${w} .`,
    `[CONTEXT] the film [RESPONSE A] was ${w} . [RESPONSE B] was ${w} . [ANSWER] A B`,
  ]);
  tokenizer ??= trainBpe(corpus, { vocabSize: 300 });
  return structuredClone(tokenizer);
}

/**
 * A random-init model directory with an LM head (policy, PM base) or a scalar head (RM base); `overrides`
 * are config.json fields on top (a longer context, a wider model).
 */
export async function baseModel(
  dir: string,
  name: string,
  head: 'lm' | 'scalar',
  seed = 1,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const tokenizerJson = judgeTokenizer();
  const config = parseLlamaConfig({
    architectures: [head === 'lm' ? 'LlamaForCausalLM' : 'LlamaForSequenceClassification'],
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 1,
    vocab_size: 300,
    max_position_embeddings: 64,
    ...overrides,
  });
  const out = join(dir, name);
  await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(seed)) });
  return out;
}

/** `n` pairs `{"prompt": "the film", "chosen": "was <good> .", "rejected": "was <bad> ."}` as JSONL. */
export async function writePairs(file: string, n: number, seed: number): Promise<string> {
  const rng = new Rng(seed);
  const lines = Array.from({ length: n }, () =>
    JSON.stringify({
      prompt: 'the film',
      chosen: ` was ${goodWords[rng.int(goodWords.length)]} .`,
      rejected: ` was ${badWords[rng.int(badWords.length)]} .`,
    }),
  );
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/** Training settings that separate good from bad on these pairs in a few seconds. */
export const judgeTraining = {
  rm: { lr: 5e-3, epochs: 3, batchSize: 16, warmupRatio: 0 },
  pm: { lr: 1e-2, epochs: 8, batchSize: 16, warmupRatio: 0 },
} as const;

/** A trained reward model ('rm') or preference model ('pm') directory. */
export async function trainedJudge(dir: string, objective: 'rm' | 'pm'): Promise<string> {
  const base = await baseModel(dir, `${objective}-base`, objective === 'rm' ? 'scalar' : 'lm', 2);
  const data = await writePairs(join(dir, `${objective}-pairs.jsonl`), objective === 'rm' ? 128 : 256, 3);
  const out = join(dir, objective);
  await runTraining({
    modelDir: base,
    dataFile: data,
    outDir: out,
    options: { ...defaultTrainOptions, objective, ...judgeTraining[objective] },
  });
  return out;
}
