/**
 * Pairs in TRL's text preference format (services/orchestrator/src/trl-pairs.ts): records given as text or
 * ids become {"prompt", "chosen", "rejected"} rows that TRL's tokenization turns back into the ids the
 * built-in trainer trains on, and the pairs where it would not (a response cut before its EOS) are counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PairRecord, textPromptIds, tokenizerFromJson, trainBpe } from '@rlhf/ml-engine';
import { trlAgreement, trlIds, trlPreferenceJsonl, trlPreferenceRow } from '@rlhf/orchestrator';

const corpus = [
  'the movie was great and the plot was fun',
  'the acting was bad and the music was loud',
  'i really liked the film and the story',
  'it was a boring film with a weak plot',
];
const tok = tokenizerFromJson(trainBpe(corpus, { vocabSize: 300 }));

test('text and id records become rows TRL tokenizes to the built-in ids', () => {
  const promptIds = textPromptIds(tok, 'the movie was');
  const records: PairRecord[] = [
    { prompt: { text: 'i really' }, chosen: { text: ' liked the film' }, rejected: { text: ' the music' } },
    {
      prompt: { ids: promptIds },
      chosen: { ids: [...tok.encode(' great and fun'), tok.eosId] },
      rejected: { ids: [...tok.encode(' boring'), tok.eosId] },
    },
  ];
  assert.deepEqual(trlAgreement(tok, records), { pairs: 2, differing: 0 });
  const row = trlPreferenceRow(tok, records[1] as PairRecord);
  assert.deepEqual(row, { prompt: 'the movie was', chosen: ' great and fun', rejected: ' boring' });
  const ids = trlIds(tok, row);
  assert.deepEqual(ids.prompt, promptIds);
  assert.deepEqual(ids.chosen, [...tok.encode(' great and fun'), tok.eosId]);
  const lines = trlPreferenceJsonl(records.map((r) => trlPreferenceRow(tok, r))).split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(
    lines.map((l) => Object.keys(JSON.parse(l))),
    [
      ['prompt', 'chosen', 'rejected'],
      ['prompt', 'chosen', 'rejected'],
    ],
  );
});

test('a response cut before its EOS is counted: TRL appends one the built-in trainer does not', () => {
  const records: PairRecord[] = [
    { prompt: { text: 'the plot' }, chosen: { text: ' was fun' }, rejected: { text: ' was weak' } },
    {
      prompt: { text: 'the music' },
      chosen: { ids: tok.encode(' was loud and') },
      rejected: { ids: [...tok.encode(' was bad'), tok.eosId] },
    },
  ];
  assert.deepEqual(trlAgreement(tok, records), { pairs: 2, differing: 1, firstDiffering: 1 });
});
