import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyModel } from '../../test/fixtures/test-model.js';
import { exportHfCheckpoint, importHfCheckpoint } from '../checkpoint/hf-checkpoint.js';
import { loadModelDir, saveModelDir } from '../checkpoint/model-dir.js';
import { parsePromptRecord } from '../data/records.js';
import { promptInputOf, readChatTemplate, renderChatPrompt } from './chat-template.js';

/** In the manner of Llama 3's template: BOS, a header per message, the assistant header to generate after. */
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m.role not in ['system', 'user', 'assistant'] %}" +
  "{{ raise_exception('unknown role ' + m.role) }}{% endif %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}" +
  '{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';
const specials = { bos: '<s>', eos: '</s>' };
const messages = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'the film?' },
];

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chat-template-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('a template renders the messages with the generation prompt, the BOS it writes included', () => {
  assert.equal(
    renderChatPrompt(TEMPLATE, messages, specials),
    '<s><|system|>be brief</s><|user|>the film?</s><|assistant|>',
  );
  assert.throws(
    () => renderChatPrompt(TEMPLATE, [{ role: 'tool', content: 'x' }], specials, 'prompts.jsonl:3'),
    /prompts\.jsonl:3: the model's chat template failed on these messages: unknown role tool/,
  );
});

test('a model directory keeps its chat template through save, load, HF export and import', async () => {
  const model = join(dir, 'model');
  await saveModelDir(model, { ...tinyModel(), chatTemplate: TEMPLATE });
  const config = JSON.parse(await readFile(join(model, 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(config.chat_template, TEMPLATE);
  assert.equal((await loadModelDir(model)).chatTemplate, TEMPLATE);
  await exportHfCheckpoint(model, join(dir, 'hf'));
  assert.equal((await importHfCheckpoint(join(dir, 'hf'), join(dir, 'imported'))).chatTemplate, TEMPLATE);
  assert.equal((await loadModelDir(join(dir, 'imported'))).chatTemplate, TEMPLATE);
  // Without a template, none is written or read.
  await saveModelDir(join(dir, 'plain'), tinyModel());
  assert.equal((await loadModelDir(join(dir, 'plain'))).chatTemplate, undefined);
});

test('chat templates are read in the forms transformers writes: a string, named templates, chat_template.jinja', async () => {
  const write = async (name: string, config: Record<string, unknown>, jinja?: string) => {
    const d = join(dir, name);
    await saveModelDir(d, tinyModel());
    const file = join(d, 'tokenizer_config.json');
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), ...config }));
    if (jinja !== undefined) await writeFile(join(d, 'chat_template.jinja'), jinja);
    return d;
  };
  assert.equal(
    await readChatTemplate(
      await write('named', {
        chat_template: [
          { name: 'tool_use', template: 'T' },
          { name: 'default', template: TEMPLATE },
        ],
      }),
    ),
    TEMPLATE,
  );
  assert.equal(await readChatTemplate(await write('jinja', {}, TEMPLATE)), TEMPLATE);
  await assert.rejects(
    readChatTemplate(await write('number', { chat_template: 3 })),
    /chat_template must be a string/,
  );
  await assert.rejects(
    readChatTemplate(await write('broken', { chat_template: '{% for m in messages %}' })),
    /tokenizer_config\.json:chat_template: the chat template does not parse/,
  );
  const torn = await write('torn', {});
  await writeFile(join(torn, 'tokenizer_config.json'), '{"chat_template": "x"');
  await assert.rejects(readChatTemplate(torn), /torn\/tokenizer_config\.json is not valid JSON/);
});

test('a prompt record as generator input: text and ids as given, messages through the template or joined', async () => {
  const templated = { ...(await loadModelDir(join(dir, 'model'))) };
  const plain = await loadModelDir(join(dir, 'plain'));
  const chat = parsePromptRecord({ messages }, 'p:1');
  const tok = templated.tokenizer;
  const bos = tok.idToToken(tok.bosId as number);
  const eos = tok.idToToken(tok.eosId);
  // Rendered with the template's own BOS and encoded without adding another, as apply_chat_template does.
  const ids = (promptInputOf(templated, chat) as { ids: number[] }).ids;
  assert.equal(tok.decode(ids), `${bos}<|system|>be brief${eos}<|user|>the film?${eos}<|assistant|>`);
  assert.equal(ids.filter((id) => id === tok.bosId).length, 1);
  assert.equal(ids[0], tok.bosId);
  assert.deepEqual(promptInputOf(plain, chat), { text: 'be brief\nthe film?' });
  assert.deepEqual(promptInputOf(templated, parsePromptRecord({ prompt: 'the film' }, 'p:2')), {
    text: 'the film',
  });
  assert.deepEqual(promptInputOf(templated, parsePromptRecord({ prompt_ids: [5, 6] }, 'p:3')), {
    ids: [5, 6],
  });
});
