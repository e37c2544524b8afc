/**
 * ScoreRequest checks: every bad field answered INVALID_ARGUMENT in the proto's snake_case path
 * (`items[2].responses[0]`), and anything above the server's limits RESOURCE_EXHAUSTED naming the limit.
 */
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { ScoreRequest } from '@rlhf/proto';
import { checkJudgePrompt, checkListLength, checkText, type JudgePromptSource } from '@rlhf/service-kit';

export interface ScoreLimits {
  /** Items (prompts) per request. */
  maxItems: number;
  /** Responses per request, over all items. */
  maxResponses: number;
  /** Characters per prompt or response. */
  maxChars: number;
}

export const defaultScoreLimits: ScoreLimits = { maxItems: 1024, maxResponses: 4096, maxChars: 32_768 };

/** One item: its prompt (text, or a conversation for the model's template) and responses. */
export interface CheckedScoreItem {
  prompt: JudgePromptSource;
  responses: string[];
}

export interface CheckedScoreRequest {
  items: CheckedScoreItem[];
  lengthPenalty: number;
  responses: number;
}

export function checkScoreRequest(req: ScoreRequest, limits: ScoreLimits): CheckedScoreRequest {
  checkListLength(req.items.length, 'items', 1, limits.maxItems);
  if (!(Number.isFinite(req.lengthPenalty) && req.lengthPenalty >= 0)) {
    throw invalidArgument(
      'length_penalty',
      `must be a finite number >= 0, got ${req.lengthPenalty}`,
      'use 0 for no penalty; the paper uses 0.001 per character',
    );
  }
  let responses = 0;
  const items = req.items.map((item, i) => {
    const field = `items[${i}]`;
    const prompt = checkJudgePrompt(item.prompt, item.conversation, field, limits.maxChars);
    checkListLength(item.responses.length, `${field}.responses`, 1, limits.maxResponses);
    responses += item.responses.length;
    if (responses > limits.maxResponses) {
      throw new RlhfError(
        'RESOURCE_EXHAUSTED',
        `holds more than the server's limit of ${limits.maxResponses} responses per request`,
        { field: 'items', fix: 'split the request' },
      );
    }
    const texts = item.responses.map((r, j) =>
      checkText(r, `${field}.responses[${j}]`, { allowEmpty: true, maxChars: limits.maxChars }),
    );
    return { prompt, responses: texts };
  });
  return { items, lengthPenalty: req.lengthPenalty, responses };
}
