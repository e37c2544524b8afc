/**
 * A judge call's prompt given as text or as a chat conversation (`prompt` or `conversation` of ScoreItem,
 * CompareRequest and RankRequest): checked before the model loads, rendered with the judge's own chat template
 * once it has.
 */
import { type ChatMessage, chatRenderer, type LoadedModelDir } from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import { checkText } from './validate.js';

/** The prompt as text, or as chat messages for the judge's template. */
export type JudgePromptSource = { text: string } | { messages: ChatMessage[] };

/**
 * Checks `prompt` and `conversation` of one request or item: one of them, not both; a conversation has at least
 * one message, and the prompt or the messages' contents together at most `maxChars` characters. `field` is
 * the path of the message holding both (`items[2]`; '' for the request itself).
 */
export function checkJudgePrompt(
  prompt: string,
  conversation: { messages: ReadonlyArray<{ role: string; content: string }> } | undefined,
  field: string,
  maxChars: number,
): JudgePromptSource {
  const at = (name: string) => (field ? `${field}.${name}` : name);
  if (conversation === undefined)
    return { text: checkText(prompt, at('prompt'), { allowEmpty: true, maxChars }) };
  if (prompt !== '')
    throw invalidArgument(
      at('conversation'),
      'was given with prompt',
      'give the prompt as text or as a conversation, not both',
    );
  if (conversation.messages.length === 0)
    throw invalidArgument(at('conversation.messages'), 'must not be empty', 'give at least one message');
  const chars = conversation.messages.reduce((n, m) => n + m.content.length, 0);
  if (chars > maxChars)
    throw new RlhfError('RESOURCE_EXHAUSTED', `has ${chars} characters, more than the limit ${maxChars}`, {
      field: at('conversation'),
    });
  return { messages: conversation.messages.map((m) => ({ role: m.role, content: m.content })) };
}

/** The prompt text a judge model reads: the text as given, or the conversation through the model's template. */
export function renderJudgePrompt(model: LoadedModelDir, source: JudgePromptSource, field: string): string {
  if ('text' in source) return source.text;
  return chatRenderer(model)(source.messages, field ? `${field}.conversation` : 'conversation');
}
