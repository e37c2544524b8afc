import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadJsonl, parseJsonlLines, readJsonl } from './jsonl.js';
import { parsePairRecord } from './records.js';

describe('JSONL reading', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jsonl-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams records, skipping blank lines, with CRLF and a BOM', async () => {
    const path = join(dir, 'pairs.jsonl');
    await writeFile(
      path,
      '\uFEFF{"prompt":"p","chosen":"a","rejected":"b"}\r\n\r\n{"prompt":"q","chosen":"c","rejected":"d","margin":1.5}\n',
    );
    const rows = await loadJsonl(path, parsePairRecord);
    assert.deepEqual(rows, [
      { prompt: { text: 'p' }, chosen: { text: 'a' }, rejected: { text: 'b' } },
      { prompt: { text: 'q' }, chosen: { text: 'c' }, rejected: { text: 'd' }, margin: 1.5 },
    ]);
  });

  it('names file and line for a bad row', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(
      path,
      '{"prompt":"p","chosen":"a","rejected":"b"}\n\n{"prompt":"p","chosen":3,"rejected":"b"}\n',
    );
    await assert.rejects(loadJsonl(path, parsePairRecord), {
      message: `${path}:3: field "chosen" expected string, got an integer`,
    });
    await writeFile(path, '{"prompt": "p"\n');
    await assert.rejects(
      loadJsonl(path, parsePairRecord),
      new RegExp(`${path}:1: not valid JSON \\(expected one JSON object per line\\)$`),
    );
  });

  it('yields rows before a later bad one (streaming)', async () => {
    const seen: string[] = [];
    const lines = ['{"prompt":"a","chosen":"x","rejected":"y"}', 'not json'];
    await assert.rejects(async () => {
      for await (const r of parseJsonlLines(lines, 'mem.jsonl', parsePairRecord)) {
        seen.push('text' in r.prompt ? r.prompt.text : '');
      }
    }, /mem.jsonl:2: not valid JSON/);
    assert.deepEqual(seen, ['a']);
  });

  it('refuses an empty dataset, naming the file', async () => {
    const path = join(dir, 'empty.jsonl');
    await writeFile(path, '\n  \n');
    await assert.rejects(loadJsonl(path, parsePairRecord), {
      message: `empty dataset: ${path} has no records`,
    });
  });

  it('reports a missing file as NOT_FOUND and a directory as unreadable', async () => {
    await assert.rejects(loadJsonl(join(dir, 'nope.jsonl'), parsePairRecord), { code: 'NOT_FOUND' });
    await assert.rejects(
      async () => {
        for await (const _ of readJsonl(dir, parsePairRecord)) {
          // unreachable
        }
      },
      new RegExp(`cannot read ${dir}`),
    );
  });
});
