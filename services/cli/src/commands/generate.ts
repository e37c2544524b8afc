import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Generation, ModelDirInfo, PromptInput } from '@rlhf/ml-engine';
import { invalidArgument, parseIntegerIn, parseNumberIn } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { ProgressBar } from '../progress.js';

interface GenerateFlags {
  model: string;
  prompt?: string;
  promptIds?: string;
  prompts?: string;
  n: string;
  temperature: string;
  topP: string;
  topK: string;
  maxNewTokens: string;
  seed: string;
  greedy?: boolean;
  out?: string;
}

/** A prompt to sample from, and the other fields of its row in a --prompts file (kept in the output). */
interface PromptLine {
  input: PromptInput;
  extra: Record<string, unknown>;
}

async function promptsFrom(f: GenerateFlags, model: ModelDirInfo): Promise<PromptLine[]> {
  const { loadDataset, parsePromptRecord, promptInputOf } = await import('@rlhf/ml-engine');
  const given = [f.prompt, f.promptIds, f.prompts].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw invalidArgument(
      '--prompt',
      'give exactly one of --prompt, --prompt-ids, --prompts',
      'e.g. --prompt "the movie"',
    );
  if (f.prompt !== undefined) return [{ input: { text: f.prompt }, extra: {} }];
  if (f.promptIds !== undefined) {
    let ids: unknown;
    try {
      ids = JSON.parse(f.promptIds);
    } catch {
      ids = null;
    }
    if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x)))
      throw invalidArgument(
        '--prompt-ids',
        `expected a JSON array of integers, got ${f.promptIds}`,
        'e.g. --prompt-ids "[5, 17, 9]"',
      );
    return [{ input: { ids: ids as number[] }, extra: {} }];
  }
  // A chat prompt ({"messages"}) goes through the model's chat template. The row's other fields (its
  // messages too) are kept in the output line, as a run's generate stage keeps them.
  // TRL's conversational prompt-only row ({"prompt": [messages]}) keeps its messages as "messages", the
  // field `rlhf judge` renders with the judge's own template.
  return loadDataset(f.prompts as string, (v, where): PromptLine => {
    const input = promptInputOf(
      model,
      parsePromptRecord(v, where, { vocabSize: model.config.vocab_size }),
      where,
    );
    const { prompt, prompt_ids: _ids, ...extra } = v as Record<string, unknown>;
    if (Array.isArray(prompt)) extra.messages = prompt;
    return { input, extra };
  });
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .summary('sample completions from a policy model')
    .description(
      'Sample n completions per prompt (batched, KV cache, seeded) and write JSONL:\n{"prompt", "responses", "response_ids", "logprobs", "finish_reasons"} per prompt, after the other fields of\nthe prompt\'s row in a --prompts file (a chat row keeps its "messages", which `rlhf judge` reads).',
    )
    .requiredOption('--model <DIR>', 'policy model directory')
    .option('--prompt <TEXT>', 'one prompt')
    .option('--prompt-ids <JSON>', 'one prompt as token ids, e.g. "[5, 17, 9]"')
    .option(
      '--prompts <FILE>',
      'JSONL or Parquet of {"prompt"}, {"prompt_ids"} or {"messages"} rows (docs/DATA.md; chats through the chat template)',
    )
    .option('-n, --n <K>', 'samples per prompt', '1')
    .option('--temperature <T>', 'sampling temperature (0 = greedy)', '1')
    .option('--top-p <P>', 'nucleus mass in (0, 1]', '1')
    .option('--top-k <K>', 'keep the k likeliest tokens (0 = all)', '0')
    .option('--max-new-tokens <N>', 'tokens to generate at most', '48')
    .option('--seed <S>', 'sampling seed', '42')
    .option('--greedy', 'always take the likeliest token')
    .option('--out <FILE>', 'write JSONL here (atomically) instead of stdout')
    .action(async (f: GenerateFlags) => {
      const { generateTexts, loadModelDirInfo, policySession, promptRows } = await import('@rlhf/ml-engine');
      const { writeFileAtomic } = await import('@rlhf/platform');
      // The weights stay on disk for ORT to read: a large model is not held twice.
      const model = await loadModelDirInfo(f.model);
      const lines = await promptsFrom(f, model);
      const prompts = lines.map((l) => l.input);
      const session = await policySession(model, await readFile(join(f.model, 'model.onnx')));
      const options = {
        n: parseIntegerIn(f.n, '--n', 1, 1024),
        temperature: parseNumberIn(f.temperature, '--temperature', 0, 100),
        topP: parseNumberIn(f.topP, '--top-p', 1e-9, 1),
        topK: parseIntegerIn(f.topK, '--top-k', 0, 1e9),
        greedy: f.greedy === true,
        maxNewTokens: parseIntegerIn(f.maxNewTokens, '--max-new-tokens', 1, 1e6),
        seed: parseIntegerIn(f.seed, '--seed', 0, 2 ** 32 - 1),
      };
      promptRows(model, prompts, options.maxNewTokens); // every prompt checked before any is sampled
      // 64 prompts at a time, for progress: the sampler batches 64 rows at a time, so 64 prompts of n samples
      // are exactly n of its batches, the same ones as for the whole file at once (the same bits out).
      const perBatch = 64;
      const bar =
        prompts.length > perBatch
          ? new ProgressBar({ label: 'generate', total: prompts.length, unit: 'prompt' })
          : null;
      try {
        const out: Generation[] = [];
        for (let at = 0; at < prompts.length; at += perBatch) {
          const batch = prompts.slice(at, at + perBatch);
          out.push(...(await generateTexts(model, session, batch, { ...options, firstPromptIndex: at })));
          bar?.update(out.length);
        }
        bar?.done(`${out.length} prompts, ${out.length * options.n} samples`);
        const text =
          out.map((g, i) => JSON.stringify({ ...lines[i]?.extra, ...g })).join('\n') +
          (out.length ? '\n' : '');
        if (f.out) await writeFileAtomic(f.out, new TextEncoder().encode(text));
        else process.stdout.write(text);
      } finally {
        await session.dispose();
      }
    });
}
