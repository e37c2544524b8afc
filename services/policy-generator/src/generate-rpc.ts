/**
 * PolicyGeneratorService.Generate and GenerateStream: check the request, load the policy, sample through the
 * shared batcher. GenerateStream sends one message per completion as soon as that completion is finished
 * (completion order, not request order: short completions come first), then ends with OK once all
 * prompts x n are sent; its set of completions is exactly Generate's for the same request. A cancelled
 * stream, or a call whose deadline passes, stops its rows in the running batch (and a call still queued is
 * dropped before it runs).
 */

import type { Sample } from '@rlhf/ml-engine';
import type {
  GenerateRequest,
  GenerateResponse,
  GenerateStreamRequest,
  GenerateStreamResponse,
} from '@rlhf/proto';
import type { CallContext, LoadedModel } from '@rlhf/service-kit';
import { completionMessage, type GeneratedCompletion } from './completions.js';
import { checkGenerateRequest, type PreparedPrompt, prepareGeneration } from './generate-request.js';
import type { PolicySampler } from './policy-sampler.js';
import type { GenerateLimits } from './sampling-settings.js';

/** What one request generated: each prompt's text and ids (BOS first), and its completions by sample. */
export interface GeneratedBatch {
  prompts: string[];
  promptIds: number[][];
  completions: GeneratedCompletion[][];
}

/** What a caller of runGenerate may hook in beside the request (all optional). */
export interface GenerateHooks {
  /** Each completion once finished (completion order). */
  onCompletion?(prompt: number, sample: number, completion: GeneratedCompletion): void;
  /** The prompts as the model sees them, once checked and tokenized (before any sampling). */
  onPrepared?(prompts: readonly PreparedPrompt[], model: LoadedModel): void;
  /** Each token as sampled (see SampleJob.onToken). */
  onToken?(prompt: number, sample: number, so: Sample, done: boolean): void;
  /** Alternatives per sampled token, with their log-probs. */
  topLogprobs?: number;
}

/**
 * One Generate request from check to completions: the gRPC calls and the OpenAI-compatible API both run
 * through here, so the same request samples the same tokens on either.
 */
export async function runGenerate(
  sampler: PolicySampler,
  limits: GenerateLimits,
  req: GenerateRequest | GenerateStreamRequest,
  ctx: Pick<CallContext, 'logger' | 'signal'>,
  hooks: GenerateHooks = {},
): Promise<GeneratedBatch> {
  const { onCompletion, onPrepared, onToken, topLogprobs } = hooks;
  // Invalid UTF-8 was answered already, by service-kit's handler wrappers (see utf8-schemas.ts).
  const checked = checkGenerateRequest(req, limits);
  const model = await sampler.model(req.model);
  const prepared = prepareGeneration(
    model,
    checked.prompts,
    checked.sampling,
    (i) => `${checked.promptField}[${i}]`,
  );
  onPrepared?.(prepared, model);
  const started = performance.now();
  const completions = await sampler.generate(model, {
    prompts: prepared.map((p) => p.ids),
    n: checked.n,
    firstPromptIndex: checked.firstPromptIndex,
    sampling: checked.sampling,
    signal: ctx.signal,
    ...(onCompletion ? { onCompletion } : {}),
    ...(onToken ? { onToken } : {}),
    ...(topLogprobs ? { topLogprobs } : {}),
  });
  ctx.logger.debug(
    {
      model: model.uri,
      prompts: prepared.length,
      n: checked.n,
      tokens: completions.flat().reduce((t, c) => t + c.tokenIds.length, 0),
      ms: Math.round(performance.now() - started),
    },
    'generated',
  );
  return { prompts: prepared.map((p) => p.text), promptIds: prepared.map((p) => p.ids), completions };
}

export function generateHandler(
  sampler: PolicySampler,
  limits: GenerateLimits,
): (req: GenerateRequest, ctx: CallContext) => Promise<GenerateResponse> {
  return (req, ctx) =>
    sampler.track(async () => {
      const { prompts, completions } = await runGenerate(sampler, limits, req, ctx);
      return {
        results: prompts.map((prompt, i) => ({
          promptIndex: i,
          prompt,
          completions: (completions[i] ?? []).map(completionMessage),
        })),
      };
    });
}

export function generateStreamHandler(
  sampler: PolicySampler,
  limits: GenerateLimits,
): (
  req: GenerateStreamRequest,
  emit: (res: GenerateStreamResponse) => void,
  ctx: CallContext,
) => Promise<void> {
  return (req, emit, ctx) =>
    sampler.track(async () => {
      await runGenerate(sampler, limits, req, ctx, {
        onCompletion: (promptIndex, sampleIndex, completion) => {
          if (!ctx.signal.aborted)
            emit({ promptIndex, sampleIndex, completion: completionMessage(completion) });
        },
      });
    });
}
