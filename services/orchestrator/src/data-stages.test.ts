import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FileArtifactStore, RlhfError } from '@rlhf/platform';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { readLabelledPairs, writeOfflinePairs } from './data-stages.js';
import { readJsonl } from './jsonl-artifacts.js';

const store = new FileArtifactStore();
const dir = await mkdtemp(join(tmpdir(), 'rlhf-pairs-'));
after(() => rm(dir, { recursive: true, force: true }));
const uri = (name: string): string => pathToFileURL(join(dir, name)).href;
const put = (name: string, lines: string[]) =>
  store.put(uri(name), new TextEncoder().encode(`${lines.join('\n')}\n`));
const described = (pattern: RegExp) => (e: unknown) => e instanceof RlhfError && pattern.test(e.describe());

test('offline pairs: iteration t trains on the next perIteration pairs in file order, wrapping around', async () => {
  const rows = Array.from({ length: 5 }, (_, i) =>
    JSON.stringify({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}`, extra: i }),
  );
  await put('pairs.jsonl', rows);
  const all = await readLabelledPairs(store, uri('pairs.jsonl'), 'spec.pairs.dataset');
  assert.deepEqual(all[4], {
    prompt: 'p4',
    chosen: 'c4',
    rejected: 'r4',
    row: { prompt: 'p4', chosen: 'c4', rejected: 'r4', extra: 4 },
  });
  const out = uri('iter-2.jsonl');
  const r = await writeOfflinePairs(store, all, 3, 2, out);
  assert.equal(r.pairs, 3);
  const written = await readJsonl<{ prompt: string }>(store, out);
  assert.deepEqual(
    written.map((w) => w.prompt),
    ['p3', 'p4', 'p0'],
  );
  assert.equal(r.samples[0]?.chosen, 'c3');
  // Never more pairs than the dataset holds, however large perIteration is.
  assert.equal((await writeOfflinePairs(store, all, 8, 1, out)).pairs, 5);
});

test('offline pairs: a bad row or an empty dataset is an error naming the field, the file and the line', async () => {
  await put('bad.jsonl', [
    JSON.stringify({ prompt: 'p', chosen: 'c', rejected: 'r' }),
    JSON.stringify({ prompt: 'p', chosen: 3, rejected: 'r' }),
  ]);
  await assert.rejects(
    readLabelledPairs(store, uri('bad.jsonl'), 'spec.pairs.dataset'),
    described(
      /^spec\.pairs\.dataset \(file:.*bad\.jsonl:2:chosen\): file:.*bad\.jsonl:2: field "chosen" expected/,
    ),
  );
  await store.put(uri('empty.jsonl'), new Uint8Array(0));
  await assert.rejects(
    readLabelledPairs(store, uri('empty.jsonl'), 'spec.pairs.dataset'),
    described(/^spec\.pairs\.dataset: .*holds no pairs/),
  );
});

test('offline pairs: conversational rows reach the trainer as given, to render with its chat template', async () => {
  const user = { role: 'user', content: 'the film?' };
  const row = {
    chosen: [user, { role: 'assistant', content: 'great' }],
    rejected: [user, { role: 'assistant', content: 'bad' }],
    score_chosen: 8,
    score_rejected: 2,
  };
  await put('ultra.jsonl', [JSON.stringify(row)]);
  const all = await readLabelledPairs(store, uri('ultra.jsonl'), 'spec.pairs.dataset');
  assert.deepEqual(
    all.map(({ prompt, chosen, rejected }) => [prompt, chosen, rejected]),
    [['the film?', 'great', 'bad']],
  );
  const out = uri('iter-1.jsonl');
  await writeOfflinePairs(store, all, 1, 1, out);
  assert.deepEqual(await readJsonl(store, out), [row]);
  // The same row from Parquet, as `datasets` exports it, one column per field.
  const columns = Object.entries(row).map(([name, value]) => ({ name, data: [value] as never }));
  await store.put(uri('ultra.parquet'), new Uint8Array(parquetWriteBuffer({ columnData: columns })));
  const fromParquet = await readLabelledPairs(store, uri('ultra.parquet'), 'spec.pairs.dataset');
  assert.deepEqual(fromParquet, all);
  await put('odd.jsonl', [JSON.stringify({ question: 'q', answer: 'a' })]);
  await assert.rejects(
    readLabelledPairs(store, uri('odd.jsonl'), 'spec.pairs.dataset'),
    described(
      /^spec\.pairs\.dataset \(file:.*odd\.jsonl:1:chosen\): unknown \(fields "question", "answer"\) row has no "chosen" \(a preference row needs/,
    ),
  );
});
