/**
 * Chat prompts. A model directory may carry a chat template (`chat_template` in `tokenizer_config.json`, or
 * `chat_template.jinja` beside it, as transformers saves them): a Jinja template turning `{"messages": [...]}`
 * into the text the model was trained on, rendered here as transformers' `apply_chat_template(messages,
 * add_generation_prompt=True)` does. Without one, the messages' contents are joined by newlines.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { LoadedModelDir } from '../checkpoint/loaded-model.js';
import type { ChatMessage } from '../data/record-fields.js';
import type { PromptRecord } from '../data/records.js';
import { invalidInput } from '../engine-error.js';
import type { PromptInput } from '../sampling/prompt-input.js';

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
 * The text of a chat prompt under `template`, ready for the generator, which puts BOS first itself: a BOS
 * the template writes at the start is dropped.
 */
export function renderChatPrompt(
  template: string,
  messages: readonly ChatMessage[],
  specials: { bos: string; eos: string },
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
  return text.startsWith(specials.bos) ? text.slice(specials.bos.length) : text;
}

/** Chat messages as a model's prompt text: its template with the generation prompt, else contents by line. */
export function chatRenderer(
  model: LoadedModelDir,
): (messages: readonly ChatMessage[], where: string) => string {
  const template = model.chatTemplate;
  if (template === undefined) return (messages) => messages.map((m) => m.content).join('\n');
  const tok = model.tokenizer;
  const specials = { bos: tok.idToToken(tok.bosId), eos: tok.idToToken(tok.eosId) };
  return (messages, where) => renderChatPrompt(template, messages, specials, where);
}

/** A prompt record as the generator's input: text, ids, or chat messages through the model's template. */
export function promptInputOf(model: LoadedModelDir, record: PromptRecord, where = 'prompt'): PromptInput {
  if (record.kind === 'prompt')
    return 'ids' in record.prompt ? { ids: record.prompt.ids } : { text: record.prompt.text };
  return { text: chatRenderer(model)(record.messages, where) };
}
