import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reviewCorpus } from '../../test/fixtures/test-corpus.js';
import { Rng } from '../random/rng.js';
import { learnByteLevelBpe, trainBpe } from './bpe-trainer.js';
import { toByteLevel } from './byte-unicode.js';
import { splitGpt2 } from './pre-tokenize.js';
import { DEFAULT_SPECIAL_TOKENS } from './special-tokens.js';
import { tokenizerFromJson } from './tokenizer.js';
import { loadTokenizer, writeTokenizerFiles } from './tokenizer-files.js';
import { byteLevelBpeJson } from './tokenizer-json.js';

const corpus = reviewCorpus(600, 3);
const json = trainBpe(corpus, { vocabSize: 420 });
const tok = tokenizerFromJson(json);

/** Random text over ASCII, Latin-1, combining accents, CJK, emoji (astral plane) and whitespace. */
function randomText(rng: Rng): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x0a, 0x0a],
    [0x09, 0x09],
    [0xa0, 0xff],
    [0x300, 0x36f],
    [0x4e00, 0x4e80],
    [0x1f300, 0x1f64f],
  ];
  let text = '';
  const length = rng.int(40);
  for (let i = 0; i < length; i++) {
    const [lo, hi] = ranges[rng.int(ranges.length)]!;
    text += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return text;
}

describe('tokenizer over a trained tokenizer.json', () => {
  it('reports the vocabulary and special ids', () => {
    assert.equal(tok.vocabSize, 420);
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [0, 1, 2]);
    assert.equal(tok.tokenToId('<|eos|>'), 1);
    assert.equal(tok.idToToken(0), '<|bos|>');
    assert.ok(tok.isSpecial(2));
    assert.ok(!tok.isSpecial(3));
  });

  it('splits each training piece exactly as training left it', () => {
    const learned = learnByteLevelBpe(corpus, { vocabSize: 420 });
    let checked = 0;
    for (const line of corpus) {
      for (const piece of splitGpt2(line)) {
        const expected = learned.segments.get(toByteLevel(piece))!.map((t) => tok.tokenToId(t));
        assert.deepEqual(tok.encode(piece), expected, JSON.stringify(piece));
        checked++;
      }
    }
    assert.ok(checked > 1000);
  });

  it('compresses text it was trained on', () => {
    const line = 'the movie was really great . i loved it .';
    const ids = tok.encode(line);
    assert.ok(ids.length < 15, `${ids.length} tokens`);
    assert.equal(tok.decode(ids), line);
  });

  it('round-trips arbitrary UTF-8 exactly, spaces before punctuation included', () => {
    const fixed = [
      'naïve café 🤖🎬 — ünïcödé',
      '  two  spaces , and . ! ?',
      '\n\n\ttab',
      '',
      'e\u0301',
      '👩‍👩‍👧',
    ];
    const rng = new Rng(11);
    const texts = [...fixed, ...Array.from({ length: 300 }, () => randomText(rng))];
    for (const text of texts) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  });

  it('recognises special tokens in text and can skip them on decode', () => {
    const ids = tok.encode('it was great<|eos|><|pad|>');
    assert.deepEqual(ids.slice(-2), [1, 2]);
    assert.equal(tok.decode(ids), 'it was great<|eos|><|pad|>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'it was great');
  });

  it('adds BOS and EOS only when asked', () => {
    const plain = tok.encode('hello');
    assert.deepEqual(tok.encode('hello', { addBos: true, addEos: true }), [0, ...plain, 1]);
  });

  it('is deterministic across instances', () => {
    const again = tokenizerFromJson(JSON.parse(JSON.stringify(json)));
    for (const line of corpus.slice(0, 50)) assert.deepEqual(again.encode(line), tok.encode(line));
  });

  it('rejects ids outside the vocabulary, naming the id and the size', () => {
    assert.throws(() => tok.decode([5, 420]), /token id 420 is outside the vocabulary .*\(vocab size 420\)/);
    assert.throws(() => tok.decode([-1]), /token id -1 /);
    assert.throws(() => tok.idToToken(1.5), /token id 1.5 /);
  });

  it('rejects files that are not BPE tokenizers', () => {
    assert.throws(
      () => tokenizerFromJson({ model: { type: 'WordPiece', vocab: {} } }, { source: 'x/tokenizer.json' }),
      /x\/tokenizer.json is not a usable tokenizer.json: model type "WordPiece" is not supported/,
    );
    assert.throws(() => tokenizerFromJson('nope'), /not a JSON object/);
  });
});

describe('tokenizer files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tok-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes tokenizer.json and tokenizer_config.json that load back to identical ids', async () => {
    await writeTokenizerFiles(dir, json);
    const loaded = await loadTokenizer(dir);
    for (const line of corpus.slice(0, 100)) assert.deepEqual(loaded.encode(line), tok.encode(line));
    assert.equal(loaded.vocabSize, tok.vocabSize);
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.eos_token, '<|eos|>');
    assert.equal(config.clean_up_tokenization_spaces, false);
    const direct = await loadTokenizer(join(dir, 'tokenizer.json'));
    assert.equal(direct.eosId, 1);
  });

  it('takes special-token roles from tokenizer_config.json', async () => {
    const sub = join(dir, 'roles');
    await rm(sub, { recursive: true, force: true });
    await mkdir(sub);
    const custom = trainBpe(corpus, {
      vocabSize: 300,
      specialTokens: { bos: '[A]', eos: '[B]', pad: '[C]' },
    });
    await writeFile(join(sub, 'tokenizer.json'), JSON.stringify(custom));
    await assert.rejects(loadTokenizer(sub), /cannot tell the end-of-sequence token/);
    await writeFile(
      join(sub, 'tokenizer_config.json'),
      JSON.stringify({ bos_token: { content: '[A]' }, eos_token: '[B]', pad_token: null }),
    );
    const loaded = await loadTokenizer(sub);
    assert.deepEqual([loaded.bosId, loaded.eosId, loaded.padId], [0, 1, 1]);
    const named = await loadTokenizer(sub, { pad: '[C]' });
    assert.equal(named.padId, 2);
    await assert.rejects(loadTokenizer(sub, { pad: '[Z]' }), /pad token "\[Z\]" is not in/);
  });

  it('reports a missing file as NOT_FOUND', async () => {
    await assert.rejects(loadTokenizer(join(dir, 'absent')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NOT_FOUND');
      return true;
    });
  });
});

describe('foreign tokenizer.json layouts', () => {
  const learned = learnByteLevelBpe(corpus, { vocabSize: 400 });
  const base = byteLevelBpeJson(learned.vocab, learned.merges, DEFAULT_SPECIAL_TOKENS);

  it('loads a GPT-2 style file: one <|endoftext|> for bos, eos and pad', () => {
    const vocab = { ...base.model.vocab };
    for (const s of ['<|bos|>', '<|eos|>', '<|pad|>']) delete vocab[s];
    vocab['<|endoftext|>'] = 0;
    const gpt2 = {
      ...base,
      added_tokens: [{ id: 0, content: '<|endoftext|>', special: true, normalized: true }],
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      model: { ...base.model, vocab },
    };
    const t = tokenizerFromJson(gpt2);
    assert.deepEqual([t.bosId, t.eosId, t.padId], [0, 0, 0]);
    assert.deepEqual(t.encode('the plot was dull .'), tok.encode('the plot was dull .'));
    assert.equal(t.decode(t.encode('x<|endoftext|>')), 'x<|endoftext|>');
  });

  it('loads a file without an added_tokens list', () => {
    const { added_tokens: _, ...bare } = base;
    const t = tokenizerFromJson(bare);
    assert.equal(t.eosId, 1);
    assert.ok(!t.isSpecial(1));
    assert.deepEqual(t.encode('the plot'), tok.encode('the plot'));
  });

  it('loads a Llama-3 style file: Split regex then ByteLevel, merges as pairs, ignore_merges', () => {
    const llama3 = {
      ...base,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          {
            type: 'Split',
            pattern: {
              Regex:
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            },
            behavior: 'Isolated',
            invert: false,
          },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      model: { ...base.model, ignore_merges: true, merges: learned.merges.map(([l, r]) => [l, r]) },
    };
    const t = tokenizerFromJson(llama3);
    for (const text of ['the movie was great . i loved it .', 'naïve 🤖 12345']) {
      assert.equal(t.decode(t.encode(text)), text);
    }
    assert.deepEqual(t.encode('the movie'), tok.encode('the movie'));
  });
});
