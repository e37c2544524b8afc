/**
 * The dataset formats of docs/DATA.md through the one reader: TRL's types in both formats, UltraFeedback and
 * RLHFlow rows, from JSONL and from Parquet (written here with hyparquet-writer, so no binary fixture is kept),
 * and a table of the rows and files that are refused, each in one line naming what it is and the fix.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { EngineError } from '../engine-error.js';
import { detectDatasetFormat, loadDataset, parseDatasetBytes } from './dataset-file.js';
import { parsePairRecord, parsePromptRecord, parseSftRecord } from './records.js';

const chat = (messages: readonly { role: string; content: string }[]) => ({
  text: `${messages.map((m) => `<${m.role}>${m.content}`).join('')}<assistant>`,
});
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describe('TRL formats', () => {
  it('preference, explicit and implicit prompt, standard and conversational', () => {
    const at = 'p.jsonl:1';
    assert.deepEqual(parsePairRecord({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' }, at), {
      prompt: { text: 'The sky is' },
      chosen: { text: ' blue.' },
      rejected: { text: ' green.' },
    });
    // Implicit: the shared prefix is the prompt, the space it ends on goes with the answers (TRL's split).
    assert.deepEqual(parsePairRecord({ chosen: 'The sky is blue.', rejected: 'The sky is green.' }, at), {
      prompt: { text: 'The sky is' },
      chosen: { text: ' blue.' },
      rejected: { text: ' green.' },
    });
    const q = user('What color is the sky?');
    assert.deepEqual(
      parsePairRecord(
        { prompt: [q], chosen: [assistant('It is blue.')], rejected: [assistant('It is green.')] },
        at,
        { chat },
      ),
      {
        prompt: { text: '<user>What color is the sky?<assistant>' },
        chosen: { text: 'It is blue.' },
        rejected: { text: 'It is green.' },
      },
    );
    const system = { role: 'system', content: 'be brief' };
    assert.deepEqual(
      parsePairRecord(
        { chosen: [system, q, assistant('It is blue.')], rejected: [system, q, assistant('It is green.')] },
        at,
        { chat },
      ),
      {
        prompt: { text: '<system>be brief<user>What color is the sky?<assistant>' },
        chosen: { text: 'It is blue.' },
        rejected: { text: 'It is green.' },
      },
    );
  });

  it('UltraFeedback rows: whole conversations, a string prompt that agrees, extra score fields', () => {
    const row = {
      prompt: 'What color is the sky?',
      prompt_id: 'abc',
      chosen: [user('What color is the sky?'), assistant('Blue.')],
      rejected: [user('What color is the sky?'), assistant('Green.')],
      messages: [user('What color is the sky?'), assistant('Blue.')],
      score_chosen: 8.5,
      score_rejected: 3,
    };
    assert.deepEqual(parsePairRecord(row, 'u:1', { chat }), {
      prompt: { text: '<user>What color is the sky?<assistant>' },
      chosen: { text: 'Blue.' },
      rejected: { text: 'Green.' },
    });
    assert.throws(
      () => parsePairRecord({ ...row, prompt: 'another question' }, 'u:2', { chat }),
      /u:2: field "prompt" differs from the leading messages that "chosen" and "rejected" share/,
    );
  });

  it('prompt-only and prompt-completion, standard and conversational; language modeling', () => {
    const q = user('What color is the sky?');
    assert.deepEqual(parsePromptRecord({ prompt: [q] }, 'g:1'), { kind: 'messages', messages: [q] });
    assert.deepEqual(parsePromptRecord({ prompt: 'The sky is' }, 'g:1'), {
      kind: 'prompt',
      prompt: { text: 'The sky is' },
    });
    assert.deepEqual(
      parseSftRecord({ prompt: [q], completion: [assistant('It is blue.')] }, 's:1', { chat }),
      {
        kind: 'prompt-completion',
        prompt: { text: '<user>What color is the sky?<assistant>' },
        completion: { text: 'It is blue.' },
      },
    );
    assert.deepEqual(parseSftRecord({ prompt: 'The sky is', completion: ' blue.' }, 's:1'), {
      kind: 'prompt-completion',
      prompt: { text: 'The sky is' },
      completion: { text: ' blue.' },
    });
    assert.deepEqual(parseSftRecord({ text: 'The sky is blue.' }, 's:1'), {
      kind: 'text',
      text: 'The sky is blue.',
    });
    assert.deepEqual(parseSftRecord({ messages: [q, assistant('It is blue.')] }, 's:1', { chat }), {
      kind: 'prompt-completion',
      prompt: { text: '<user>What color is the sky?<assistant>' },
      completion: { text: 'It is blue.' },
    });
  });
});

describe('refused rows: one line naming the shape, the row and the fields the command needs', () => {
  const q = user('q?');
  const cases: Array<{
    parse: 'prompt' | 'pair' | 'sft';
    row: object;
    field: string;
    message: string;
    fix: RegExp;
  }> = [
    {
      parse: 'prompt',
      row: { chosen: 'The sky is blue.', rejected: 'The sky is green.' },
      field: 'r:3:prompt',
      message: 'TRL preference (implicit prompt, standard) row has no prompt',
      fix: /^a prompt row needs "prompt" \(text or a list of chat messages\)/,
    },
    {
      parse: 'prompt',
      row: { question: 'q', answer: 'a' },
      field: 'r:3:prompt',
      message: 'unknown (fields "question", "answer") row has no prompt',
      fix: /^a prompt row needs/,
    },
    {
      parse: 'pair',
      row: { prompt: 'p', completion: 'c' },
      field: 'r:3:chosen',
      message: 'TRL prompt-completion (standard) row has no "chosen"',
      fix: /^a preference row needs "chosen" and "rejected"/,
    },
    {
      parse: 'pair',
      row: { prompt: 'p', responses: ['a', 'b'], rewards: [1, 0] },
      field: 'r:3:chosen',
      message: 'RLHFlow judged generations row has no "chosen"',
      fix: /^a preference row needs/,
    },
    {
      parse: 'pair',
      row: { chosen: 'same start', rejected: 'other start' },
      field: 'r:3:prompt',
      message:
        'TRL preference (implicit prompt, standard) row has no "prompt" and chosen/rejected share no prefix',
      fix: /with "prompt" unless chosen and rejected share it as a prefix/,
    },
    {
      parse: 'pair',
      row: { chosen: [user('a'), assistant('x')], rejected: [user('b'), assistant('y')] },
      field: 'r:3:prompt',
      message:
        'TRL preference (implicit prompt, conversational) row has chosen and rejected conversations that share no leading messages, so there is no prompt to train on',
      fix: /^a preference row needs/,
    },
    {
      parse: 'pair',
      row: { chosen: [assistant('x')], rejected: [assistant('y')] },
      field: 'r:3:prompt',
      message:
        'TRL preference (implicit prompt, conversational) row has only the answers in "chosen"/"rejected" and no "prompt"',
      fix: /^a preference row needs/,
    },
    {
      parse: 'pair',
      row: { chosen: [q, assistant('x')], rejected: 'text', score_chosen: 1 },
      field: 'r:3:prompt',
      message:
        'UltraFeedback-style preference row has no "prompt" and mixes a conversation and text in chosen/rejected',
      fix: /^a preference row needs/,
    },
    {
      parse: 'sft',
      row: { prompt: [q] },
      field: 'r:3:completion',
      message: 'TRL prompt-only (conversational) row has no completion to learn',
      fix: /^an SFT row needs "text", "messages"/,
    },
    {
      parse: 'sft',
      row: { chosen: 'a b', rejected: 'a c', prompt: 'a' },
      field: 'r:3:completion',
      message: 'TRL preference (explicit prompt, standard) row has no completion to learn',
      fix: /^an SFT row needs/,
    },
    {
      parse: 'sft',
      row: { completion: 'c' },
      field: 'r:3:prompt',
      message: 'TRL prompt-completion (standard) row has no "prompt"',
      fix: /^an SFT row needs/,
    },
  ];
  const parsers = { prompt: parsePromptRecord, pair: parsePairRecord, sft: parseSftRecord };
  for (const c of cases)
    it(`${c.parse}: ${c.message}`, () => {
      assert.throws(
        () => parsers[c.parse](c.row, 'r:3'),
        (e: unknown) =>
          e instanceof EngineError &&
          e.message === c.message &&
          e.field === c.field &&
          c.fix.test(e.fix ?? '') &&
          !`${e.message} ${e.fix}`.includes('\n'),
      );
    });
});

describe('JSONL and Parquet files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-formats-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const conversation = [
    [user('hi'), assistant('hello')],
    [user('sky?'), assistant('blue')],
  ];
  const parquet = () =>
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'messages', data: conversation },
          { name: 'id', data: [7n, 8n], type: 'INT64' },
        ],
      }),
    );

  it('reads Parquet by its magic bytes, whatever the name, with nested chat columns and INT64 as numbers', async () => {
    const bytes = parquet();
    assert.equal(detectDatasetFormat(bytes.subarray(0, 4), 'data.jsonl'), 'parquet');
    await writeFile(join(dir, 'chat.parquet'), bytes);
    await writeFile(join(dir, 'no-extension'), bytes);
    const rows = (file: string) => loadDataset(join(dir, file), (v, where) => ({ v, where }));
    for (const file of ['chat.parquet', 'no-extension']) {
      const got = await rows(file);
      assert.deepEqual(
        got.map((r) => r.v),
        [
          { messages: conversation[0], id: 7 },
          { messages: conversation[1], id: 8 },
        ],
      );
      assert.equal(got[1]?.where, `${join(dir, file)}:row 2`);
    }
    const sft = await parseDatasetBytes(bytes, 'store://chat', (v, where) =>
      parseSftRecord(v, where, { chat }),
    );
    assert.deepEqual(sft[1], {
      kind: 'prompt-completion',
      prompt: { text: '<user>sky?<assistant>' },
      completion: { text: 'blue' },
    });
  });

  it('a column a Parquet row has no value in is an absent field, as in a JSONL line without it', async () => {
    const bytes = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'prompt', data: ['the sky is', null], type: 'STRING' },
          { name: 'messages', data: [null, [user('sky?')]] },
        ],
      }),
    );
    assert.deepEqual(await parseDatasetBytes(bytes, 'mixed.parquet', parsePromptRecord), [
      { kind: 'prompt', prompt: { text: 'the sky is' } },
      { kind: 'messages', messages: [user('sky?')] },
    ]);
  });

  it('a bad row in Parquet is named by its row number', async () => {
    const bytes = new Uint8Array(
      parquetWriteBuffer({ columnData: [{ name: 'question', data: ['a', 'b'], type: 'STRING' }] }),
    );
    await assert.rejects(parseDatasetBytes(bytes, 'q.parquet', parsePromptRecord), {
      message: 'unknown (fields "question") row has no prompt',
      field: 'q.parquet:row 1:prompt',
    });
  });

  it('refuses other files in one line naming the format, never as invalid JSON', async () => {
    const jsonl = new TextEncoder().encode('{"prompt": "a"}\n');
    const cases: Array<{ name: string; bytes: Uint8Array; message: RegExp; fix: RegExp }> = [
      {
        name: 'cut.parquet',
        bytes: parquet().subarray(0, 3),
        message: /^named as Parquet but does not start with the Parquet magic bytes "PAR1"/,
        fix: /complete Parquet file/,
      },
      {
        name: 'cut-tail.parquet',
        bytes: parquet().subarray(0, 40),
        message: /^cannot read Parquet: /,
        fix: /write it again with pyarrow/,
      },
      {
        name: 'data.jsonl.gz',
        bytes: gzipSync(jsonl),
        message: /^a gzip-compressed file, not JSONL or Parquet/,
        fix: /gunzip/,
      },
      {
        name: 'data.json',
        bytes: new TextEncoder().encode('[{"prompt": "a"}]'),
        message: /^a JSON array file, not JSONL/,
        fix: /one JSON object per line/,
      },
      {
        name: 'data.arrow',
        bytes: new TextEncoder().encode('ARROW1\0\0rest'),
        message: /^an Arrow IPC file, not JSONL or Parquet/,
        fix: /Parquet/,
      },
      {
        name: 'latin1.jsonl',
        bytes: new Uint8Array([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]),
        message: /^not valid UTF-8/,
        fix: /UTF-8/,
      },
    ];
    for (const c of cases) {
      const check = (e: unknown) =>
        e instanceof EngineError &&
        (e.field ?? '').endsWith(c.name) &&
        c.message.test(e.message) &&
        c.fix.test(e.fix ?? '') &&
        !/JSON \(expected/.test(e.message);
      await assert.rejects(parseDatasetBytes(c.bytes, c.name, parsePromptRecord), check, c.name);
      await writeFile(join(dir, c.name), c.bytes);
      if (c.name !== 'latin1.jsonl')
        await assert.rejects(loadDataset(join(dir, c.name), parsePromptRecord), check, `${c.name} from disk`);
    }
  });
});
