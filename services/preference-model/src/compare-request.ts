/**
 * Compare and Rank request checks, in the proto's snake_case field names: INVALID_ARGUMENT for bad fields,
 * RESOURCE_EXHAUSTED above the server's limits.
 */
import { invalidArgument } from '@rlhf/platform';
import { type CompareRequest, RankMethod, type RankRequest } from '@rlhf/proto';
import { checkJudgePrompt, checkListLength, checkText, type JudgePromptSource } from '@rlhf/service-kit';

export interface PreferenceLimits {
  /** Responses per Rank call. */
  maxResponses: number;
  /** Characters per prompt or response. */
  maxChars: number;
}

export const defaultPreferenceLimits: PreferenceLimits = { maxResponses: 64, maxChars: 16_384 };

export interface CheckedCompare {
  /** The prompt as text, or a conversation for the model's own chat template. */
  prompt: JudgePromptSource;
  a: string;
  b: string;
}

export function checkCompareRequest(req: CompareRequest, limits: PreferenceLimits): CheckedCompare {
  const opts = { allowEmpty: true, maxChars: limits.maxChars };
  return {
    prompt: checkJudgePrompt(req.prompt, req.conversation, '', limits.maxChars),
    a: checkText(req.responseA, 'response_a', opts),
    b: checkText(req.responseB, 'response_b', opts),
  };
}

export interface CheckedRank {
  prompt: JudgePromptSource;
  responses: string[];
  method: 'tournament' | 'round-robin';
}

export function checkRankRequest(req: RankRequest, limits: PreferenceLimits): CheckedRank {
  const opts = { allowEmpty: true, maxChars: limits.maxChars };
  const prompt = checkJudgePrompt(req.prompt, req.conversation, '', limits.maxChars);
  checkListLength(req.responses.length, 'responses', 2, limits.maxResponses);
  const responses = req.responses.map((r, i) => checkText(r, `responses[${i}]`, opts));
  return { prompt, responses, method: rankMethodOf(req.method, 'method') };
}

/** The ranking method of a RankMethod value (unspecified: tournament). */
export function rankMethodOf(method: RankMethod, field: string): CheckedRank['method'] {
  switch (method) {
    case RankMethod.RANK_METHOD_UNSPECIFIED:
    case RankMethod.RANK_METHOD_TOURNAMENT:
      return 'tournament';
    case RankMethod.RANK_METHOD_ROUND_ROBIN:
      return 'round-robin';
    default:
      throw invalidArgument(
        field,
        `unknown rank method ${method}`,
        'use RANK_METHOD_TOURNAMENT or RANK_METHOD_ROUND_ROBIN',
      );
  }
}
