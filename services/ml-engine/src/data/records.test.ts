import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePairRecord, parsePromptRecord, parseSftRecord, textOrIdsToIds } from './records.js';

const at = 'd.jsonl:7';

describe('dataset records', () => {
  it('reads prompts as text, ids or chat messages', () => {
    assert.deepEqual(parsePromptRecord({ prompt: 'the movie', id: 3 }, at), {
      kind: 'prompt',
      prompt: { text: 'the movie' },
    });
    assert.deepEqual(parsePromptRecord({ prompt_ids: [5, 6] }, at, { vocabSize: 10 }), {
      kind: 'prompt',
      prompt: { ids: [5, 6] },
    });
    assert.deepEqual(parsePromptRecord({ messages: [{ role: 'user', content: 'hi' }] }, at), {
      kind: 'messages',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.throws(() => parsePromptRecord({}, at), {
      message: 'an empty object row has no prompt',
      field: 'd.jsonl:7:prompt',
    });
    assert.throws(
      () => parsePromptRecord({ messages: [{ role: 'user' }] }, at),
      /messages\[0\]: field "content" expected string/,
    );
    assert.throws(
      () => parsePromptRecord({ messages: [] }, at),
      /field "messages" expected a non-empty array/,
    );
    assert.throws(() => parsePromptRecord([1], at), /d.jsonl:7: expected a JSON object, got an array/);
  });

  it('reads pairs with an optional margin and id variants used verbatim', () => {
    assert.deepEqual(
      parsePairRecord({ prompt_ids: [1], chosen_ids: [2, 3], rejected: 'no', margin: 0.5 }, at),
      {
        prompt: { ids: [1] },
        chosen: { ids: [2, 3] },
        rejected: { text: 'no' },
        margin: 0.5,
      },
    );
    assert.throws(() => parsePairRecord({ prompt: 'p', chosen: 'a', rejected: 'b', margin: 'big' }, at), {
      message: 'd.jsonl:7: field "margin" expected a finite number, got a string',
    });
    assert.throws(
      () => parsePairRecord({ prompt: 'p', prompt_ids: [1], chosen: 'a', rejected: 'b' }, at),
      /give "prompt" or "prompt_ids", not both/,
    );
  });

  it('checks token ids against the vocabulary', () => {
    const row = { prompt: 'p', chosen_ids: [1, 99], rejected: 'b' };
    assert.throws(() => parsePairRecord(row, at, { vocabSize: 50 }), {
      message: 'd.jsonl:7: field "chosen_ids"[1] = 99 is outside the vocabulary (vocab size 50)',
    });
    assert.doesNotThrow(() => parsePairRecord(row, at));
    assert.throws(
      () => parsePairRecord({ ...row, chosen_ids: [1.5] }, at),
      /field "chosen_ids"\[0\] expected a token id \(integer >= 0\), got a fraction/,
    );
  });

  it('reads SFT rows as prompt + completion or plain text', () => {
    assert.deepEqual(parseSftRecord({ prompt: 'a', completion_ids: [4] }, at), {
      kind: 'prompt-completion',
      prompt: { text: 'a' },
      completion: { ids: [4] },
    });
    assert.deepEqual(parseSftRecord({ text: 'all of it' }, at), { kind: 'text', text: 'all of it' });
    assert.throws(
      () => parseSftRecord({ text: 'x', prompt: 'y' }, at),
      /give "text" or "prompt" \+ "completion"/,
    );
    assert.throws(() => parseSftRecord({ prompt: 'y' }, at), {
      message: 'TRL prompt-only (standard) row has no completion to learn',
      field: 'd.jsonl:7:completion',
    });
  });

  it('turns text-or-ids fields into ids', () => {
    const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
    assert.deepEqual(textOrIdsToIds({ text: 'ab' }, encode), [97, 98]);
    assert.deepEqual(textOrIdsToIds({ ids: [1, 2] }, encode), [1, 2]);
  });
});

describe('conversational records (TRL): chat messages through the model, or their contents by line', () => {
  const chat = (messages: readonly { role: string; content: string }[]) => ({
    text: `${messages.map((m) => `<${m.role}>${m.content}`).join('')}<assistant>`,
  });
  const conversation = [
    { role: 'system', content: 'be kind' },
    { role: 'user', content: 'the film?' },
    { role: 'assistant', content: 'it was great .' },
  ];

  it('an SFT conversation learns its last, assistant message after the others as the prompt', () => {
    assert.deepEqual(parseSftRecord({ messages: conversation }, 'sft:1', { chat }), {
      kind: 'prompt-completion',
      prompt: { text: '<system>be kind<user>the film?<assistant>' },
      completion: { text: 'it was great .' },
    });
    assert.deepEqual(parseSftRecord({ messages: conversation }, 'sft:1'), {
      kind: 'prompt-completion',
      prompt: { text: 'be kind\nthe film?' },
      completion: { text: 'it was great .' },
    });
    assert.throws(
      () => parseSftRecord({ messages: conversation.slice(0, 2) }, 'sft:2', { chat }),
      /sft:2: field "messages" must end with an assistant message/,
    );
  });

  it('a pair may give its prompt as messages and each response as one assistant message', () => {
    const row = {
      prompt: conversation.slice(0, 2),
      chosen: [{ role: 'assistant', content: 'great .' }],
      rejected: 'dull .',
      margin: 2,
    };
    assert.deepEqual(parsePairRecord(row, 'pairs:1', { chat }), {
      prompt: { text: '<system>be kind<user>the film?<assistant>' },
      chosen: { text: 'great .' },
      rejected: { text: 'dull .' },
      margin: 2,
    });
    assert.throws(
      () => parsePairRecord({ ...row, chosen: conversation }, 'pairs:2', { chat }),
      /pairs:2: field "chosen" as messages must be one \{"role": "assistant", "content"\} message/,
    );
    assert.throws(
      () => parsePairRecord({ ...row, prompt: [{ role: 'user' }] }, 'pairs:3', { chat }),
      /pairs:3/,
    );
  });
});
