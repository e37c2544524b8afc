/** PreferenceModelService.Compare and Rank: check, load the PM, check the fit, judge. */
import type { CompareRequest, CompareResponse, RankRequest, RankResponse } from '@rlhf/proto';
import { type CallContext, renderJudgePrompt } from '@rlhf/service-kit';
import { checkCompareRequest, checkRankRequest, type PreferenceLimits } from './compare-request.js';
import type { PreferenceJudge } from './preference-judge.js';

export function compareHandler(
  judge: PreferenceJudge,
  limits: PreferenceLimits,
): (req: CompareRequest, ctx: CallContext) => Promise<CompareResponse> {
  return async (req, ctx) => {
    const c = checkCompareRequest(req, limits);
    const model = await judge.model(req.model);
    // A conversation is rendered with the preference model's own chat template.
    const prompt = renderJudgePrompt(model.model, c.prompt, '');
    const promptField = 'text' in c.prompt ? 'prompt' : 'conversation';
    judge.checkFits(model, { field: promptField, text: prompt }, [
      { field: 'response_a', text: c.a },
      { field: 'response_b', text: c.b },
    ]);
    const r = await judge.compare(model, { prompt, a: c.a, b: c.b }, ctx.signal);
    return { probABetter: r.probABetter, probAFirst: r.aFirst, probASecond: r.bFirst };
  };
}

export function rankHandler(
  judge: PreferenceJudge,
  limits: PreferenceLimits,
): (req: RankRequest, ctx: CallContext) => Promise<RankResponse> {
  return async (req) => {
    const c = checkRankRequest(req, limits);
    const model = await judge.model(req.model);
    const prompt = renderJudgePrompt(model.model, c.prompt, '');
    judge.checkFits(
      model,
      { field: 'text' in c.prompt ? 'prompt' : 'conversation', text: prompt },
      c.responses.map((text, i) => ({ field: `responses[${i}]`, text })),
    );
    const r = await judge.rank(model, prompt, c.responses, c.method);
    return { ranking: r.ranking, scores: r.scores, comparisons: r.comparisons };
  };
}
