/**
 * Token-by-token chunks of one choice: joined, they are exactly the non-streamed text; text that may still
 * turn into a stop string, or that ends inside a UTF-8 character, waits for the tokens that settle it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Sample, tokenizerFromJson, trainBpe } from '@rlhf/ml-engine';
import { toCompletion } from '../completions.js';
import { ChoiceStream } from './openai-stream.js';

// Byte-level BPE without merges for "é": its two UTF-8 bytes are two tokens.
const tok = tokenizerFromJson(trainBpe(['the film was good .', 'ab'], { vocabSize: 280 }));

/** The chunks of a sample that takes `ids` one at a time, and of its finished completion. */
function streamed(ids: number[], stops: string[], finish: Sample['finishReason'], prefix = '') {
  const s = new ChoiceStream(tok, stops, prefix);
  const so: Sample = { promptIndex: 0, sampleIndex: 0, tokenIds: [], logprobs: [], finishReason: 'length' };
  const texts: string[] = [];
  const runs: number[][] = [];
  ids.forEach((id, i) => {
    so.tokenIds.push(id);
    so.logprobs.push(-i);
    if (i === ids.length - 1) return;
    const d = s.tokens(so);
    if (d) {
      texts.push(d.text);
      runs.push([...d.run.ids]);
    }
    // A row given back by the row loop takes the same tokens again: nothing new to send.
    assert.equal(s.tokens({ ...so, tokenIds: so.tokenIds.slice(0, 1) }), null);
  });
  const c = toCompletion(tok, { ...so, finishReason: finish }, stops);
  const last = s.finish(c);
  texts.push(last.text);
  runs.push([...last.run.ids]);
  return { texts, runs, whole: c.text };
}

test('chunks join to the whole text; each token is sent once, with its chunk', () => {
  const ids = tok.encode('the film was good .');
  const { texts, runs, whole } = streamed(ids, [], 'length');
  assert.equal(texts.join(''), whole);
  assert.deepEqual(runs.flat(), ids);
  assert.ok(runs.every((r) => r.length === 1));
  // The echoed prompt comes first, once.
  const echoed = streamed(ids, [], 'length', 'PROMPT');
  assert.equal(echoed.texts[0]?.startsWith('PROMPT'), true);
  assert.equal(echoed.texts.join(''), `PROMPT${whole}`);
});

test('text that could begin a stop string waits; a matched stop never reaches the client', () => {
  const ids = tok.encode('the film was good .');
  // "was" is matched at its last token, which ends the row: the final chunk holds only what precedes it.
  const end = ids.findIndex((_, i) => tok.decode(ids.slice(0, i + 1)).includes('was'));
  const { texts, whole } = streamed(ids.slice(0, end + 1), ['was'], 'stop');
  assert.equal(whole, 'the film ');
  assert.equal(texts.join(''), whole);
  assert.ok(
    texts.every((t) => !t.includes('w')),
    JSON.stringify(texts),
  );
  // A held-back prefix that turns out not to be the stop is sent once the next token rules it out.
  const fine = streamed(ids, ['wax'], 'length');
  assert.equal(fine.texts.join(''), fine.whole);
});

test('a character split over tokens is sent whole, not as U+FFFD', () => {
  const ids = tok.encode('aé b');
  assert.ok(ids.length >= 4, 'é is two byte tokens');
  const { texts, whole } = streamed(ids, [], 'length');
  assert.equal(whole, 'aé b');
  assert.equal(texts.join(''), whole);
  assert.ok(
    texts.every((t) => !t.includes('\uFFFD')),
    JSON.stringify(texts),
  );
});
