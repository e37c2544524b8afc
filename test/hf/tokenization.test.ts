/**
 * Tokenization as Hugging Face does it, checked against Hugging Face's own libraries: tokenizers shaped
 * like Llama 3 (TemplateProcessing BOS), Llama 2 / Mistral (<s> first, add_bos_token), Qwen2 (no BOS) and
 * GPT-2 (no post-processor) are trained and saved by `tokenizers`/`transformers` in the reference Python
 * environment (scripts/python-env.mjs), which also computes `tokenizer(text)` and
 * `apply_chat_template(tokenize=True)`. The engine must produce the same ids, in the tokenizer itself and
 * in every place that builds rows from prompts: generation, training examples and reward scoring.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  chatPrompt,
  defaultLlamaConfig,
  encodePair,
  encodeSft,
  type LoadedModelDir,
  loadTokenizer,
  promptRows,
  readChatTemplate,
  textPromptIds,
} from '@rlhf/ml-engine';
import { runReferencePython } from '../helpers/python-env.js';

interface Reference {
  texts: { text: string; ids: number[]; plain: number[] }[];
  chat: { messages: { role: string; content: string }[]; ids: number[] } | null;
}

const families = ['llama3', 'llama2', 'qwen2', 'gpt2'] as const;
let dir = '';
let reference: Record<(typeof families)[number], Reference>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hf-tokenization-'));
  reference = JSON.parse(runReferencePython('test/hf/make_tokenizers.py', [dir]));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Enough of a loaded model directory for the row builders: the tokenizer, its template, a config. */
async function modelOf(family: string): Promise<LoadedModelDir> {
  const d = join(dir, family);
  const tokenizer = await loadTokenizer(d);
  const chatTemplate = await readChatTemplate(d);
  const config = { ...defaultLlamaConfig, vocab_size: tokenizer.vocabSize, max_position_embeddings: 64 };
  return {
    dir: d,
    config,
    tokenizer,
    tokenizerJson: {} as LoadedModelDir['tokenizerJson'],
    weights: new Map(),
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
  };
}

describe('the engine tokenizes as transformers does', () => {
  for (const family of families) {
    test(`${family}: text with and without special tokens, ids verbatim, chat templates`, async () => {
      const ref = reference[family];
      const model = await modelOf(family);
      const tok = model.tokenizer;
      for (const { text, ids, plain } of ref.texts) {
        assert.deepEqual(textPromptIds(tok, text), ids, `tokenizer(${JSON.stringify(text)})`);
        assert.deepEqual(tok.encode(text), plain, `add_special_tokens=False on ${JSON.stringify(text)}`);
      }
      const [first] = ref.texts;
      assert.ok(first);
      // Generation: text through the tokenizer's rule, ids exactly as given (no BOS in front of them).
      assert.deepEqual(promptRows(model, [{ text: first.text }, { ids: first.plain }], 4), [
        first.ids,
        first.plain,
      ]);
      // Training: the prompt as tokenizer(prompt), the response without specials, then EOS; ids verbatim.
      const response = ref.texts[1]!;
      const sft = encodeSft(
        tok,
        { kind: 'prompt-completion', prompt: { text: first.text }, completion: { text: response.text } },
        64,
      );
      assert.deepEqual(sft.ids, [...first.ids, ...response.plain, tok.eosId]);
      const pair = encodePair(
        tok,
        { prompt: { ids: first.plain }, chosen: { ids: [5] }, rejected: { ids: [6] } },
        64,
      );
      assert.deepEqual(pair.chosen.ids, [...first.plain, 5]);
      if (family === 'qwen2')
        assert.equal(tok.bosId, undefined, 'Qwen2 has no BOS, and EOS does not stand in for it');
      if (ref.chat === null) {
        assert.equal(model.chatTemplate, undefined);
        return;
      }
      const chat = chatPrompt(model)(ref.chat.messages, 'messages');
      assert.deepEqual(chat, { ids: ref.chat.ids }, 'apply_chat_template(tokenize=True)');
      assert.deepEqual(promptRows(model, [chat], 4), [ref.chat.ids]);
    });
  }
});
