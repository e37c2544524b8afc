/**
 * Chat prompts. A model directory may carry a chat template (`chat_template` in `tokenizer_config.json`, or
 * `chat_template.jinja` beside it, as transformers saves them): a Jinja template turning `{"messages": [...]}`
 * into the text the model was trained on, rendered here as transformers' `apply_chat_template(messages,
 * add_generation_prompt=True)` does. Without one, the messages' contents are joined by newlines.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { ModelDirInfo } from '../checkpoint/loaded-model.js';
import type { ChatMessage } from '../data/record-fields.js';
import type { PromptRecord } from '../data/records.js';
import { invalidInput } from '../engine-error.js';
import type { PromptInput } from '../sampling/prompt-input.js';
import { chatPromptIds } from './prompt-ids.js';

/** The template of `tokenizer_config.json`'s `chat_template`: a string, or named templates (HF's list form). */
function templateOf(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(
      (t): t is { name: string; template: string } =>
        typeof t === 'object' && t !== null && typeof t.name === 'string' && typeof t.template === 'string',
    );
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    if (chosen && named.length === value.length) return chosen.template;
  }
  throw invalidInput(
    `${where}: chat_template must be a string or a list of {"name", "template"}`,
    `${where}:chat_template`,
  );
}

/** Checks that `template` parses, naming `where` when it does not. */
export function checkChatTemplate(template: string, where: string): void {
  try {
    new Template(template);
  } catch (cause) {
    throw invalidInput(`${where}: the chat template does not parse: ${(cause as Error).message}`, where);
  }
}

/** The chat template of a model or HF checkpoint directory, if it has one (checked to parse). */
export async function readChatTemplate(dir: string): Promise<string | undefined> {
  const configFile = join(dir, 'tokenizer_config.json');
  const text = await readFile(configFile, 'utf8').catch(() => '{}');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw invalidInput(`${configFile} is not valid JSON: ${(cause as Error).message}`, configFile);
  }
  let template = templateOf(config.chat_template, configFile);
  let where = `${configFile}:chat_template`;
  const jinjaFile = join(dir, 'chat_template.jinja');
  if (template === undefined && (await stat(jinjaFile).catch(() => null))) {
    template = await readFile(jinjaFile, 'utf8');
    where = jinjaFile;
  }
  if (template !== undefined) checkChatTemplate(template, where);
  return template;
}

/**
 * The text of a chat prompt under `template`, as transformers renders it: the template writes any BOS
 * itself, so the text is encoded without adding special tokens (tokenizer/prompt-ids.ts).
 */
export function renderChatPrompt(
  template: string,
  messages: readonly ChatMessage[],
  specials: { bos: string | undefined; eos: string },
  where = 'messages',
): string {
  let text: string;
  try {
    text = new Template(template).render({
      messages,
      add_generation_prompt: true,
      bos_token: specials.bos,
      eos_token: specials.eos,
    });
  } catch (cause) {
    throw invalidInput(
      `${where}: the model's chat template failed on these messages: ${(cause as Error).message}`,
      `${where}:messages`,
      'check the roles and their order against the template',
    );
  }
  return text;
}

/**
 * Chat messages as a model's prompt text: its template with the generation prompt (to be encoded with
 * `chatPromptIds`), else the contents by line (a plain text prompt).
 */
export function chatRenderer(
  model: ModelDirInfo,
): (messages: readonly ChatMessage[], where: string) => string {
  const template = model.chatTemplate;
  if (template === undefined) return (messages) => messages.map((m) => m.content).join('\n');
  const tok = model.tokenizer;
  const specials = {
    bos: tok.bosId === undefined ? undefined : tok.idToToken(tok.bosId),
    eos: tok.idToToken(tok.eosId),
  };
  return (messages, where) => renderChatPrompt(template, messages, specials, where);
}

/**
 * Chat messages as a prompt for training records (`RecordOptions.chat`): the template's text as ids
 * encoded without special tokens, or without a template the contents by line as a text prompt.
 */
export function chatPrompt(
  model: ModelDirInfo,
): (messages: readonly ChatMessage[], where: string) => { text: string } | { ids: number[] } {
  const render = chatRenderer(model);
  return (messages, where) => {
    const text = render(messages, where);
    return model.chatTemplate === undefined ? { text } : { ids: chatPromptIds(model.tokenizer, text) };
  };
}

/**
 * A prompt record as the generator's input: text, ids, or chat messages through the model's template,
 * encoded as `apply_chat_template(tokenize=True)` does (ids, nothing added). Without a template the joined
 * contents are a text prompt.
 */
export function promptInputOf(model: ModelDirInfo, record: PromptRecord, where = 'prompt'): PromptInput {
  if (record.kind === 'prompt')
    return 'ids' in record.prompt ? { ids: record.prompt.ids } : { text: record.prompt.text };
  return chatPrompt(model)(record.messages, where);
}
