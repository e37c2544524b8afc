/** RewardModelService.Score: check the request, load the reward model, score through the shared batcher. */
import type { ScoreRequest, ScoreResponse } from '@rlhf/proto';
import { type CallContext, renderJudgePrompt } from '@rlhf/service-kit';
import type { RewardScorer } from './reward-scorer.js';
import { checkScoreRequest, type ScoreLimits } from './score-request.js';

export function scoreHandler(
  scorer: RewardScorer,
  limits: ScoreLimits,
): (req: ScoreRequest, ctx: CallContext) => Promise<ScoreResponse> {
  return async (req, ctx) => {
    const checked = checkScoreRequest(req, limits);
    const model = await scorer.model(req.model);
    // A conversation is rendered with the reward model's own chat template.
    const items = checked.items.map((item, i) => ({
      prompt: renderJudgePrompt(model.model, item.prompt, `items[${i}]`),
      responses: item.responses,
    }));
    const results = await scorer.score(model, items, checked.lengthPenalty, ctx.signal);
    return { results };
  };
}
