import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reviewCorpus } from '../../test/fixtures/test-corpus.js';
import { Rng } from '../random/rng.js';
import { learnByteLevelBpe, trainBpe } from './bpe-trainer.js';
import { BYTE_TO_CHAR, fromByteLevel, toByteLevel } from './byte-unicode.js';
import { splitGpt2 } from './pre-tokenize.js';

describe('byte-level table', () => {
  it('maps the 256 bytes to distinct characters the way GPT-2 does', () => {
    assert.equal(new Set(BYTE_TO_CHAR).size, 256);
    assert.equal(BYTE_TO_CHAR[0x20], 'Ġ');
    assert.equal(BYTE_TO_CHAR[0x0a], 'Ċ');
    assert.equal(BYTE_TO_CHAR[0x41], 'A');
    assert.equal(BYTE_TO_CHAR[0x00], 'Ā'); // unprintable bytes move to 256 and up, in byte order
    assert.equal(BYTE_TO_CHAR[0xad], 'Ń'); // the soft hyphen is the last of them
  });

  it('spells any text and reads it back', () => {
    const text = 'héllo 🤖 世界\n\t';
    const spelled = toByteLevel(text);
    assert.equal(new TextDecoder().decode(fromByteLevel(spelled)), text);
    assert.equal(fromByteLevel('a\u4e16'), undefined);
  });
});

describe('GPT-2 pre-tokenizer', () => {
  it('splits contractions, words, numbers, punctuation and spaces', () => {
    assert.deepEqual(splitGpt2("I've 2 dogs's  toys!! ok"), [
      'I',
      "'ve",
      ' 2',
      ' dogs',
      "'s",
      ' ',
      ' toys',
      '!!',
      ' ok',
    ]);
    assert.deepEqual(splitGpt2('a\n\nb  '), ['a', '\n', '\n', 'b', '  ']);
  });

  it('keeps every character', () => {
    const rng = new Rng(5);
    const alphabet = [..."ab 1\n\t.,'é😀世 "];
    for (let n = 0; n < 200; n++) {
      const text = Array.from({ length: rng.int(30) }, () => alphabet[rng.int(alphabet.length)]).join('');
      assert.equal(splitGpt2(text).join(''), text);
    }
  });
});

describe('trainBpe', () => {
  const corpus = reviewCorpus(400, 1);

  it('reserves the special tokens at ids 0..2 and then the 256 bytes', () => {
    const json = trainBpe(corpus, { vocabSize: 300 });
    assert.equal(json.model.vocab['<|bos|>'], 0);
    assert.equal(json.model.vocab['<|eos|>'], 1);
    assert.equal(json.model.vocab['<|pad|>'], 2);
    assert.equal(json.model.vocab['!'], 3);
    assert.deepEqual(
      json.added_tokens.map((t) => [t.id, t.content, t.special, t.normalized]),
      [
        [0, '<|bos|>', true, false],
        [1, '<|eos|>', true, false],
        [2, '<|pad|>', true, false],
      ],
    );
    for (const ch of BYTE_TO_CHAR) assert.ok(json.model.vocab[ch] !== undefined, `byte token ${ch}`);
    assert.equal(Object.keys(json.model.vocab).length, 300);
    assert.equal(json.model.merges.length, 300 - 259);
  });

  it('learns the most frequent pairs first', () => {
    const learned = learnByteLevelBpe(['aaab aaab aaab xy'], { vocabSize: 262, minFrequency: 1 });
    // Pieces "aaab" x1, " aaab" x2, " xy": (a,a) occurs 6 times; then (aa,a) and (a,b) tie at 3 and
    // the pair with the smaller left id (the byte `a`) wins; then (aa,ab).
    assert.deepEqual(learned.merges, [
      ['a', 'a'],
      ['a', 'b'],
      ['aa', 'ab'],
    ]);
    assert.deepEqual(learned.segments.get('Ġaaab'), ['Ġ', 'aaab']);
    assert.deepEqual(learned.segments.get('aaab'), ['aaab']);
    assert.deepEqual(learned.segments.get('Ġxy'), ['Ġ', 'x', 'y']);
  });

  it('stops below minFrequency, leaving the vocabulary smaller than asked', () => {
    const json = trainBpe(['abc'], { vocabSize: 1000 });
    assert.equal(json.model.merges.length, 0);
    assert.equal(Object.keys(json.model.vocab).length, 259);
  });

  it('is deterministic and independent of corpus order', () => {
    const a = JSON.stringify(trainBpe(corpus, { vocabSize: 400 }));
    const b = JSON.stringify(trainBpe(corpus, { vocabSize: 400 }));
    const c = JSON.stringify(trainBpe(new Rng(9).shuffle([...corpus]), { vocabSize: 400 }));
    assert.equal(a, b);
    assert.equal(a, c);
  });

  it('does not learn merges from special tokens written in the corpus', () => {
    const json = trainBpe(['<|eos|><|eos|><|eos|> hi hi hi'], { vocabSize: 300 });
    const merged = (json.model.merges as string[]).map((m) => m.replace(' ', ''));
    assert.ok(!merged.includes('<|'), merged.join(','));
    assert.ok(merged.includes('Ġhi'));
  });

  it('takes custom and extra special tokens', () => {
    const json = trainBpe(corpus, {
      vocabSize: 300,
      specialTokens: { bos: '<s>', eos: '</s>', pad: '<pad>', extra: ['<|user|>'] },
    });
    assert.deepEqual(
      json.added_tokens.map((t) => t.content),
      ['<s>', '</s>', '<pad>', '<|user|>'],
    );
    assert.equal(json.model.vocab['<|user|>'], 3);
  });

  it('rejects a vocabulary too small for the specials and bytes', () => {
    assert.throws(() => trainBpe(corpus, { vocabSize: 100 }), /vocabSize must be an integer >= 259/);
    assert.throws(
      () => trainBpe(corpus, { vocabSize: 300, specialTokens: { pad: '!' } }),
      /special token "!" is a byte token/,
    );
  });
});
