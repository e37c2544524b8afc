import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenizerKey } from './tokenizer-key.js';

const doc = (merges: unknown[]) => ({
  version: '1.0',
  model: { type: 'BPE', vocab: { a: 0, s: 1, as: 2, Ġ: 3, Ġas: 4 }, merges },
});

test('merges as "a b" strings and as [a, b] pairs key the same tokenizer', () => {
  assert.equal(
    tokenizerKey(doc(['a s', 'Ġ as'])),
    tokenizerKey(
      doc([
        ['a', 's'],
        ['Ġ', 'as'],
      ]),
    ),
  );
});

test('other merges, another order or another vocabulary key differently', () => {
  const key = tokenizerKey(doc(['a s', 'Ġ as']));
  assert.notEqual(key, tokenizerKey(doc(['Ġ as', 'a s'])));
  assert.notEqual(key, tokenizerKey(doc([['a', 's']])));
  const other = doc(['a s', 'Ġ as']);
  other.model.vocab.as = 5;
  assert.notEqual(key, tokenizerKey(other));
});

test('a tokenizer without BPE merges keys as its JSON', () => {
  const wordLevel = { model: { type: 'WordLevel', vocab: { a: 0 } } };
  assert.equal(tokenizerKey(wordLevel), JSON.stringify(wordLevel));
});
