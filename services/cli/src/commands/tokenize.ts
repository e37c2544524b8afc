import { invalidArgument } from '@rlhf/platform/core';
import type { Command } from 'commander';

interface TokenizeFlags {
  model: string;
  text?: string;
  decode?: string;
  addBos?: boolean;
  specialTokens?: boolean;
  addEos?: boolean;
}

function parseIds(raw: string): number[] {
  let ids: unknown;
  try {
    ids = JSON.parse(raw);
  } catch {
    ids = undefined;
  }
  if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id))) {
    throw invalidArgument(
      '--decode',
      `expected a JSON array of token ids, got ${raw}`,
      'e.g. --decode "[0, 83, 271]"',
    );
  }
  return ids as number[];
}

export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .summary("encode text with a model's tokenizer, or decode ids")
    .description(
      [
        'Print the token ids of --text as a JSON array on one line, or the text of the ids in --decode.',
        'Special tokens written in the text (<|eos|>) become their ids; BOS and EOS are added only when asked.',
        "--special-tokens adds the tokenizer's own special tokens as Hugging Face's tokenizer(text) does, which",
        'is what generation and training do with a prompt given as text (docs/MODELS.md).',
      ].join('\n'),
    )
    .requiredOption('--model <DIR>', 'model directory (or a tokenizer.json)')
    .option('--text <TEXT>', 'text to encode')
    .option('--decode <JSON>', 'token ids to decode, as a JSON array')
    .option('--special-tokens', "add the tokenizer's own special tokens (its post-processor)")
    .option('--add-bos', 'prepend the BOS token')
    .option('--add-eos', 'append the EOS token')
    .addHelpText(
      'after',
      '\nExamples:\n  rlhf tokenize --model models/base --text "a great movie" --add-bos\n  rlhf tokenize --model models/base --decode "[0, 64, 271]"\n',
    )
    .action(async (f: TokenizeFlags) => {
      if ((f.text === undefined) === (f.decode === undefined)) {
        throw invalidArgument('--text', 'pass exactly one of --text TEXT or --decode JSON');
      }
      if (f.decode !== undefined && (f.addBos || f.addEos || f.specialTokens)) {
        const flag = f.addBos ? '--add-bos' : f.addEos ? '--add-eos' : '--special-tokens';
        throw invalidArgument(flag, 'only applies with --text');
      }
      const { loadTokenizer } = await import('@rlhf/ml-engine');
      const tokenizer = await loadTokenizer(f.model);
      if (f.text !== undefined) {
        const ids = tokenizer.encode(f.text, {
          addSpecialTokens: f.specialTokens === true,
          addBos: f.addBos === true,
          addEos: f.addEos === true,
        });
        process.stdout.write(`${JSON.stringify(ids)}\n`);
        return;
      }
      const ids = parseIds(f.decode as string);
      let text: string;
      try {
        text = tokenizer.decode(ids);
      } catch (e) {
        const { field, message, fix } = e as { field?: string; message: string; fix?: string };
        if (field !== 'ids') throw e;
        throw invalidArgument('--decode', message, fix);
      }
      process.stdout.write(`${text}\n`);
    });
}
