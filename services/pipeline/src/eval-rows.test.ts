import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type EvalRow, formatEvalRows, parseEvalRows, parseEvalRowsJsonl } from './eval-rows.js';
import { evaluationMetrics } from './evaluation.js';

const row = (over: Partial<EvalRow> = {}): EvalRow => ({
  prompt: 'the film',
  completion: ' was great .',
  completion_ids: [17, 40, 5, 2],
  finish_reason: 'eos',
  endedWithEos: true,
  logp: -3.5,
  logpBaseline: -4.25,
  proxyReward: 0.75,
  gold: 1.5,
  grammatical: true,
  words: 2,
  row: 7,
  sample: 0,
  ...over,
});

const codeOf = (fn: () => unknown): { code: string; field: string; message: string } => {
  try {
    fn();
  } catch (e) {
    return e as { code: string; field: string; message: string };
  }
  assert.fail('expected an error');
};

test('formatEvalRows and parseEvalRowsJsonl round-trip, nulls included', () => {
  const rows = [
    row(),
    row({ sample: 1, completion: ' was', finish_reason: 'length', endedWithEos: false, grammatical: false }),
    row({ row: 8, proxyReward: null, gold: null, grammatical: null }),
  ];
  const bytes = formatEvalRows(rows);
  assert.ok(new TextDecoder().decode(bytes).endsWith('}\n'));
  assert.deepEqual(parseEvalRowsJsonl(bytes, 'shard-0.jsonl'), rows);
  assert.equal(formatEvalRows([]).length, 0);
});

test('parseEvalRows gives EvalSamples: logpInitial is the baseline, a missing proxy reward is NaN', () => {
  const text = new TextDecoder().decode(
    formatEvalRows([row(), row({ row: 8, proxyReward: null, gold: null, grammatical: null })]),
  );
  const [a, b] = parseEvalRows(`${text}\n\n`, 'x.jsonl');
  assert.deepEqual(a, {
    prompt: 'the film',
    completion: ' was great .',
    endedWithEos: true,
    logp: -3.5,
    logpInitial: -4.25,
    proxyReward: 0.75,
    gold: 1.5,
    grammatical: true,
    words: 2,
  });
  assert.ok(b && Number.isNaN(b.proxyReward) && b.gold === null && b.grammatical === null);
});

test('parsed rows feed evaluationMetrics: KL from logp - logpBaseline, win rate by gold', () => {
  const policy = parseEvalRows(
    formatEvalRows([
      row({ gold: 2, logp: -3, logpBaseline: -5 }),
      row({ row: 8, gold: 0, logp: -1, logpBaseline: -2 }),
    ]),
    'pi_t',
  );
  const baseline = parseEvalRows(
    formatEvalRows([
      row({ gold: 1, logp: -5, logpBaseline: -5 }),
      row({ row: 8, gold: 0, logp: -2, logpBaseline: -2 }),
    ]),
    'pi_0',
  );
  const m = evaluationMetrics(policy, baseline);
  assert.equal(m.kl, 1.5);
  assert.equal(m.winRate, 0.75);
  assert.equal(m.goldReward, 1);
  assert.equal(evaluationMetrics(baseline, baseline).kl, 0);
});

test('bad rows are refused naming source:line and the field', () => {
  const line = (o: Record<string, unknown>) => `${JSON.stringify({ ...row(), ...o })}\n`;
  const cases: Array<[string, string]> = [
    [line({ logp: 'x' }), 'e.jsonl:1:logp'],
    [line({ logpBaseline: null }), 'e.jsonl:1:logpBaseline'],
    [line({ proxyReward: 'high' }), 'e.jsonl:1:proxyReward'],
    [line({ grammatical: 1 }), 'e.jsonl:1:grammatical'],
    [line({ words: -1 }), 'e.jsonl:1:words'],
    [line({ row: 1.5 }), 'e.jsonl:1:row'],
    [line({ finish_reason: 'done' }), 'e.jsonl:1:finish_reason'],
    [line({ completion_ids: [1, -2] }), 'e.jsonl:1:completion_ids'],
    [`${line({})}{"prompt": 3}\n`, 'e.jsonl:2:prompt'],
    [`${line({})}[1]\n`, 'e.jsonl:2'],
    ['{not json\n', 'e.jsonl:1'],
    ['\n\n', 'e.jsonl'],
  ];
  for (const [text, field] of cases) {
    const err = codeOf(() => parseEvalRowsJsonl(text, 'e.jsonl'));
    assert.equal(err.code, 'INVALID_ARGUMENT', field);
    assert.equal(err.field, field, err.message);
  }
  const badUtf8 = codeOf(() => parseEvalRows(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 'u.jsonl'));
  assert.equal(badUtf8.field, 'u.jsonl');
});
