import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { tokenizerFromJson } from '../tokenizer/tokenizer.js';
import { encodePair, encodeSft } from './examples.js';

const tok = tokenizerFromJson(trainBpe(['the film was great .', 'the film was dull .'], { vocabSize: 270 }));

test('text parts get BOS and EOS; the loss counts the completion and its EOS', () => {
  const e = encodeSft(
    tok,
    { kind: 'prompt-completion', prompt: { text: 'the film' }, completion: { text: ' was great .' } },
    64,
  );
  const prompt = tok.encode('the film');
  const completion = tok.encode(' was great .');
  assert.deepEqual(e.ids, [tok.bosId, ...prompt, ...completion, tok.eosId]);
  assert.deepEqual(
    e.targets,
    e.ids.map((_, i) => i > prompt.length),
  );
  const t = encodeSft(tok, { kind: 'text', text: 'the film' }, 64);
  assert.deepEqual(t.ids, [tok.bosId, ...prompt, tok.eosId]);
  assert.deepEqual(
    t.targets,
    t.ids.map((_, i) => i > 0),
  );
});

test('token-id parts are used verbatim with nothing added', () => {
  const e = encodeSft(
    tok,
    { kind: 'prompt-completion', prompt: { ids: [5, 6] }, completion: { ids: [7, 8, 9] } },
    64,
  );
  assert.deepEqual(e.ids, [5, 6, 7, 8, 9]);
  assert.deepEqual(e.targets, [false, false, true, true, true]);
  const p = encodePair(
    tok,
    { prompt: { ids: [5] }, chosen: { ids: [7] }, rejected: { text: ' was dull .' } },
    64,
  );
  assert.deepEqual(p.chosen.ids, [5, 7]);
  assert.deepEqual(p.rejected.ids, [5, ...tok.encode(' was dull .'), tok.eosId]);
});

test('rows longer than the context are cut and counted', () => {
  const stats = { truncated: 0 };
  const e = encodeSft(
    tok,
    { kind: 'prompt-completion', prompt: { ids: [1, 2, 3] }, completion: { ids: [4, 5, 6] } },
    4,
    stats,
  );
  assert.deepEqual(e.ids, [1, 2, 3, 4]);
  assert.equal(stats.truncated, 1);
});
