/**
 * The JUDGE stage's data: generations `{"prompt", "responses": [...]}` in, judged records out — the same
 * record with `"rewards": [...]` (one per response) added. Every other field is kept as it came, so what
 * the generator wrote (token ids, log-probs, finish reasons) flows on to the pairing stage.
 */
import { chatRenderer, type LoadedModelDir, parseDatasetBytes, parsePromptRecord } from '@rlhf/ml-engine';
import { invalidArgument } from '@rlhf/platform';

export interface GenerationRecord {
  prompt: string;
  responses: string[];
  /** The record as read, every field included. */
  raw: Record<string, unknown>;
}

function parseGeneration(value: unknown, where: string): GenerationRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(
      where,
      'expected a JSON object',
      'write one {"prompt","responses"} object per line',
    );
  const raw = value as Record<string, unknown>;
  if (typeof raw.prompt !== 'string')
    throw invalidArgument(`${where}:prompt`, 'expected a string', 'write the prompt as text');
  const responses = raw.responses;
  if (!Array.isArray(responses) || responses.length === 0)
    throw invalidArgument(`${where}:responses`, 'expected a non-empty array of strings');
  responses.forEach((r, i) => {
    if (typeof r !== 'string') throw invalidArgument(`${where}:responses[${i}]`, 'expected a string');
  });
  return { prompt: raw.prompt, responses: responses as string[], raw };
}

/** Parses a generations artifact (JSONL or Parquet); errors name `<source>:<line>` and the field. */
export async function parseGenerations(data: Uint8Array, source: string): Promise<GenerationRecord[]> {
  return parseDatasetBytes(data, source, parseGeneration);
}

/**
 * The prompt a judge model reads for a record: the record's chat `messages` (kept from a chat prompt row)
 * rendered with the judge's own chat template when both exist, since a reward model may use another template
 * than the policy that rendered `prompt`; else `prompt` as written.
 */
export function judgePrompt(model: LoadedModelDir, record: GenerationRecord, where: string): string {
  if (model.chatTemplate === undefined || record.raw.messages === undefined) return record.prompt;
  const chat = parsePromptRecord({ messages: record.raw.messages }, where);
  return chat.kind === 'messages' ? chatRenderer(model)(chat.messages, where) : record.prompt;
}

/** Judged JSONL: each record with its rewards (replacing any it had), one line each. */
export function formatJudged(records: readonly GenerationRecord[], rewards: readonly number[][]): Uint8Array {
  const lines = records.map((r, i) => JSON.stringify({ ...r.raw, rewards: rewards[i] }));
  return new TextEncoder().encode(lines.length ? `${lines.join('\n')}\n` : '');
}
