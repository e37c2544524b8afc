/**
 * Byte-level BPE training (Sennrich et al. 2016 over GPT-2's byte alphabet), the algorithm of HF's
 * `BpeTrainer`: split the corpus with GPT-2's pre-tokenizer, spell each piece in byte characters, then
 * repeatedly merge the most frequent adjacent pair of symbols into a new token until the vocabulary
 * reaches its target size. The result is deterministic: counts do not depend on corpus order and ties go
 * to the smaller id pair.
 */
import { invalidInput } from '../engine-error.js';
import { toByteLevel } from './byte-unicode.js';
import { PairHeap } from './pair-heap.js';
import { splitGpt2 } from './pre-tokenize.js';
import { DEFAULT_SPECIAL_TOKENS, type SpecialTokens, specialTokenList } from './special-tokens.js';
import { byteAlphabet, byteLevelBpeJson, type TokenizerJson } from './tokenizer-json.js';

export interface BpeTrainOptions {
  /** Target vocabulary size, specials and the 256 byte tokens included. */
  vocabSize: number;
  /** Reserved tokens; default `<|bos|>`, `<|eos|>`, `<|pad|>` at ids 0, 1, 2. */
  specialTokens?: Partial<SpecialTokens>;
  /** A pair must occur at least this often to be merged (default 2: a pair seen once is memorisation). */
  minFrequency?: number;
}

export interface LearnedBpe {
  /** Tokens in id order. */
  vocab: string[];
  /** Merges in rank order. */
  merges: [string, string][];
  /** How training left each distinct byte-level piece of the corpus split, for checking an encoder. */
  segments: Map<string, string[]>;
  specials: SpecialTokens;
}

/** Pair keys pack two ids below 2^21 into one exact double, so a Map can key on them. */
const ID_LIMIT = 2 ** 21;
const pairKey = (left: number, right: number) => left * ID_LIMIT + right;

/**
 * Counts the byte-level pieces of the corpus. Special tokens written in the text are cut out first, as the
 * encoder cuts them out before pre-tokenizing; otherwise `<|eos|>` in a document would teach merges of
 * `<|`, `eos` and `|>` that the encoder never meets.
 */
function countPieces(corpus: Iterable<string>, specials: readonly string[]): Map<string, number> {
  const escaped = specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const specialSplit = new RegExp(escaped.join('|'), 'g');
  const counts = new Map<string, number>();
  for (const text of corpus) {
    if (typeof text !== 'string')
      throw invalidInput(`corpus items must be strings, got ${typeof text}`, 'corpus');
    for (const section of text.split(specialSplit)) {
      for (const piece of splitGpt2(section)) {
        const spelled = toByteLevel(piece);
        counts.set(spelled, (counts.get(spelled) ?? 0) + 1);
      }
    }
  }
  return counts;
}

function checkOptions(options: BpeTrainOptions, specials: SpecialTokens): void {
  const list = specialTokenList(specials);
  const minimum = list.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < minimum) {
    throw invalidInput(
      `vocabSize must be an integer >= ${minimum} (the ${list.length} special tokens plus 256 bytes), got ${options.vocabSize}`,
      'vocabSize',
    );
  }
  if (options.vocabSize > ID_LIMIT) {
    throw invalidInput(`vocabSize must be at most ${ID_LIMIT}, got ${options.vocabSize}`, 'vocabSize');
  }
  if (new Set(list).size !== list.length || list.some((t) => t.length === 0)) {
    throw invalidInput(
      `special tokens must be distinct and non-empty, got ${JSON.stringify(list)}`,
      'specialTokens',
    );
  }
  const alphabet = new Set(byteAlphabet());
  const clash = list.find((t) => alphabet.has(t));
  if (clash !== undefined) {
    throw invalidInput(
      `special token ${JSON.stringify(clash)} is a byte token already; use a longer name such as <|${clash}|>`,
      'specialTokens',
    );
  }
}

/** Learns the merges; `trainBpe` wraps the result as a `tokenizer.json` document. */
export function learnByteLevelBpe(corpus: Iterable<string>, options: BpeTrainOptions): LearnedBpe {
  const specials: SpecialTokens = { ...DEFAULT_SPECIAL_TOKENS, ...options.specialTokens };
  checkOptions(options, specials);
  const minFrequency = options.minFrequency ?? 2;

  const vocab: string[] = [...specialTokenList(specials), ...byteAlphabet()];
  const idOf = new Map<string, number>();
  vocab.forEach((token, id) => {
    if (!idOf.has(token)) idOf.set(token, id);
  });

  const pieceCounts = countPieces(corpus, specialTokenList(specials));
  const pieces = [...pieceCounts.keys()];
  const freq = pieces.map((p) => pieceCounts.get(p)!);
  const words: number[][] = pieces.map((p) => [...p].map((ch) => idOf.get(ch)!));

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1, changed: Set<number>) => {
    const word = words[w]!;
    for (let i = 0; i + 1 < word.length; i++) {
      const key = pairKey(word[i]!, word[i + 1]!);
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[w]!);
      changed.add(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (set === undefined) {
          set = new Set();
          pairWords.set(key, set);
        }
        set.add(w);
      }
    }
  };
  const heap = new PairHeap();
  const pushChanged = (changed: Set<number>) => {
    for (const key of changed) {
      const count = pairCount.get(key)!;
      if (count > 0) heap.push({ count, left: Math.floor(key / ID_LIMIT), right: key % ID_LIMIT });
      else pairCount.delete(key);
    }
  };
  const initial = new Set<number>();
  for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
  pushChanged(initial);

  const merges: [string, string][] = [];
  let vocabSize = idOf.size;
  while (vocabSize < options.vocabSize) {
    const top = heap.pop();
    if (top === undefined) break;
    const key = pairKey(top.left, top.right);
    if (pairCount.get(key) !== top.count) continue; // stale entry
    if (top.count < minFrequency) break;
    const token = vocab[top.left]! + vocab[top.right]!;
    // Two different merges can spell the same string; the token then keeps its first id, as in HF.
    let id = idOf.get(token);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(token);
      idOf.set(token, id);
      vocabSize++;
    }
    merges.push([vocab[top.left]!, vocab[top.right]!]);
    const changed = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      addPairs(w, -1, changed);
      words[w] = mergeInWord(words[w]!, top.left, top.right, id);
      addPairs(w, 1, changed);
    }
    pairWords.delete(key);
    pushChanged(changed);
  }

  const segments = new Map<string, string[]>();
  pieces.forEach((piece, w) => {
    segments.set(
      piece,
      words[w]!.map((id) => vocab[id]!),
    );
  });
  return { vocab, merges, segments, specials };
}

/** Replaces each non-overlapping occurrence of (left, right), scanning left to right, with `merged`. */
function mergeInWord(word: number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < word.length; i++) {
    if (word[i] === left && word[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(word[i]!);
    }
  }
  return out;
}

/** Trains a byte-level BPE on `corpus` (lines or documents) and returns the `tokenizer.json` document. */
export function trainBpe(corpus: Iterable<string>, options: BpeTrainOptions): TokenizerJson {
  const learned = learnByteLevelBpe(corpus, options);
  return byteLevelBpeJson(learned.vocab, learned.merges, learned.specials);
}
