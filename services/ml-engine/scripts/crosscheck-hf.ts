/**
 * Checks our trainer and loader against Hugging Face's Rust `tokenizers` (its Node binding, which ships
 * prebuilt binaries but weighs 65 MB, so it is not a dependency). Run by hand:
 *
 *   npm i --prefix /tmp/hf tokenizers
 *   npx tsx services/ml-engine/scripts/crosscheck-hf.ts /tmp/hf
 *
 * It prints how many merges agree with HF's BpeTrainer on the same corpus, and how many of a set of texts
 * (corpus lines, random UTF-8, special tokens) encode and decode identically; it exits 1 on any difference.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/random/rng.js';
import { learnByteLevelBpe, trainBpe } from '../src/tokenizer/bpe-trainer.js';
import { tokenizerFromJson } from '../src/tokenizer/tokenizer.js';
import { reviewCorpus } from '../test/fixtures/test-corpus.js';

interface HfEncoding {
  getIds(): number[];
}
interface HfTokenizer {
  setPreTokenizer(p: unknown): void;
  train(files: string[]): void;
  save(path: string): void;
  encode(text: string, pair: null, options: { addSpecialTokens: boolean }): Promise<HfEncoding>;
  decode(ids: number[], skipSpecial: boolean): Promise<string>;
}
interface HfModule {
  Tokenizer: { new (model: unknown): HfTokenizer; fromFile(path: string): HfTokenizer };
  BPE: { empty(): unknown };
  byteLevelPreTokenizer(addPrefixSpace: boolean, useRegex: boolean): unknown;
}

const prefix = process.argv[2];
if (prefix === undefined) {
  console.error('usage: crosscheck-hf.ts <directory where `npm i --prefix <dir> tokenizers` installed it>');
  process.exit(2);
}
const hf = createRequire(join(prefix, 'node_modules', 'x.js'))('tokenizers') as HfModule;
const work = mkdtempSync(join(tmpdir(), 'hf-crosscheck-'));

function randomText(rng: Rng, maxLength: number): string {
  const ranges: [number, number][] = [
    [0x61, 0x7a],
    [0x20, 0x40],
    [0x0a, 0x0a],
    [0xe0, 0xff],
    [0x300, 0x36f],
    [0x4e00, 0x4e40],
    [0x1f600, 0x1f640],
  ];
  let text = '';
  const length = rng.int(maxLength);
  for (let i = 0; i < length; i++) {
    const [lo, hi] = ranges[rng.int(ranges.length)]!;
    text += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return text;
}

// 1. Training: HF's default BpeTrainer (min_frequency 0, no specials, alphabet = bytes seen) on a file,
//    ours on the same lines. HF reads a file line by line keeping each newline, so ours gets them too.
const rng = new Rng(8);
const noisy = Array.from({ length: 3000 }, () => randomText(rng, 50).replaceAll('\n', ' ').trimEnd() || 'x');
const corpus = [...reviewCorpus(2000, 5), ...noisy];
const corpusFile = join(work, 'corpus.txt');
writeFileSync(corpusFile, `${corpus.join('\n')}\n`);
const hfTrainer = new hf.Tokenizer(hf.BPE.empty());
hfTrainer.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
hfTrainer.train([corpusFile]);
hfTrainer.save(join(work, 'hf-trained.json'));
const hfMerges = (
  JSON.parse(readFileSync(join(work, 'hf-trained.json'), 'utf8')).model.merges as (string | string[])[]
).map((m) => (Array.isArray(m) ? m.join(' ') : m));
const ourMerges = learnByteLevelBpe(
  corpus.map((line) => `${line}\n`),
  { vocabSize: 1_000_000, minFrequency: 0 },
).merges.map(([a, b]) => `${a} ${b}`);
let agree = 0;
while (agree < hfMerges.length && hfMerges[agree] === ourMerges[agree]) agree++;
console.log(`merges: HF ${hfMerges.length}, ours ${ourMerges.length}, identical prefix ${agree}`);

// 2. Loading: our trained file through HF's Rust loader and through ours.
const json = trainBpe(reviewCorpus(3000, 7), { vocabSize: 700, specialTokens: { extra: ['<|user|>'] } });
const file = join(work, 'tokenizer.json');
writeFileSync(file, JSON.stringify(json));
const rust = hf.Tokenizer.fromFile(file);
const ours = tokenizerFromJson(json);
const texts = [
  ...reviewCorpus(500, 9),
  'x<|eos|>y <|user|> hi',
  "it's   we've\n\n  ok",
  ...Array.from({ length: 1000 }, () => randomText(rng, 60)),
];
let encodeDiff = 0;
let decodeDiff = 0;
for (const text of texts) {
  const ids = (await rust.encode(text, null, { addSpecialTokens: false })).getIds();
  if (JSON.stringify(ids) !== JSON.stringify(ours.encode(text))) encodeDiff++;
  if (ids.length > 0 && (await rust.decode(ids, false)) !== ours.decode(ids)) decodeDiff++;
}
const withBos = (await rust.encode('the movie', null, { addSpecialTokens: true })).getIds();
const bosOk = JSON.stringify(withBos) === JSON.stringify(ours.encode('the movie', { addBos: true }));
console.log(`texts: ${texts.length}, encode differences ${encodeDiff}, decode differences ${decodeDiff}`);
console.log(`HF adds BOS through our post-processor as addBos does: ${bosOk}`);
const ok =
  agree === hfMerges.length && hfMerges.length === ourMerges.length && encodeDiff + decodeDiff === 0 && bosOk;
process.exit(ok ? 0 : 1);
