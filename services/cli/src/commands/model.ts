import { readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { LlamaConfig, Tokenizer, TokenizerJson } from '@rlhf/ml-engine';
import { invalidArgument, parseIntegerIn, RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { importHfModel, registerModelTransfer } from './model-transfer.js';

/** The engine, loaded when a subcommand runs (not for `--help`). */
const engine = () => import('@rlhf/ml-engine');

interface InitFlags {
  config: string;
  out: string;
  tokenizer?: string;
  tokenizerCorpus?: string;
  vocabSize?: string;
  seed: string;
  overwrite?: boolean;
}

/** The text of a file a flag names; a missing file names the flag. */
async function readFlagFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RlhfError(
      missing ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      missing ? `${path} does not exist` : `cannot read ${path}: ${(cause as Error).message}`,
      { field: flag, cause },
    );
  }
}

/** A partial Llama config from JSON, or YAML for `.yaml`/`.yml` files. */
async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const text = await readFlagFile(path, '--config');
  const yaml = ['.yaml', '.yml'].includes(extname(path).toLowerCase());
  let raw: unknown;
  try {
    raw = yaml ? (await import('yaml')).parse(text) : JSON.parse(text);
  } catch (cause) {
    throw invalidArgument(
      '--config',
      `${path} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(cause as Error).message}`,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidArgument(
      '--config',
      `${path} must hold an object of Llama config fields`,
      'e.g. {"hidden_size": 128, "num_hidden_layers": 2}',
    );
  }
  return raw as Record<string, unknown>;
}

interface ChosenTokenizer {
  json: TokenizerJson;
  tokenizer: Tokenizer;
  /** Names the tokenizer in errors. */
  source: string;
}

/** `--tokenizer` (a tokenizer.json or a directory holding one), or a BPE trained on `--tokenizer-corpus`. */
async function chooseTokenizer(f: InitFlags, rawConfig: Record<string, unknown>): Promise<ChosenTokenizer> {
  const { defaultLlamaConfig, loadTokenizer, tokenizerFromJson, trainBpe } = await engine();
  if ((f.tokenizer === undefined) === (f.tokenizerCorpus === undefined)) {
    throw invalidArgument(
      '--tokenizer',
      'pass exactly one of --tokenizer FILE or --tokenizer-corpus FILE',
      'use --tokenizer-corpus to train a byte-level BPE on a text file (one document a line)',
    );
  }
  if (f.tokenizer !== undefined) {
    if (f.vocabSize !== undefined) {
      throw invalidArgument('--vocab-size', 'only applies with --tokenizer-corpus', 'drop --vocab-size');
    }
    const isDir = await stat(f.tokenizer).then(
      (s) => s.isDirectory(),
      () => false,
    );
    const file = isDir ? join(f.tokenizer, 'tokenizer.json') : f.tokenizer;
    let json: TokenizerJson;
    try {
      json = JSON.parse(await readFlagFile(file, '--tokenizer')) as TokenizerJson;
    } catch (cause) {
      if (!(cause instanceof SyntaxError)) throw cause;
      throw invalidArgument('--tokenizer', `${file} is not valid JSON: ${cause.message}`);
    }
    return { json, tokenizer: await loadTokenizer(file), source: file };
  }
  const corpusFile = f.tokenizerCorpus as string;
  const lines = (await readFlagFile(corpusFile, '--tokenizer-corpus')).split(/\r?\n/).filter((l) => l !== '');
  const fromFlag = f.vocabSize !== undefined;
  const vocabSize = fromFlag
    ? parseIntegerIn(f.vocabSize as string, '--vocab-size', 1, 2 ** 21)
    : Number(rawConfig.vocab_size ?? defaultLlamaConfig.vocab_size);
  let json: TokenizerJson;
  try {
    json = trainBpe(lines, { vocabSize });
  } catch (e) {
    const { field, message } = e as { field?: string; message: string };
    if (field !== 'vocabSize') throw e;
    throw invalidArgument(
      fromFlag ? '--vocab-size' : `${f.config}:vocab_size`,
      message.replace('vocabSize', 'the tokenizer vocabulary size'),
    );
  }
  return { json, tokenizer: tokenizerFromJson(json), source: `the tokenizer trained on ${corpusFile}` };
}

/** Runs a write to `--out`, turning the engine's "refusing to overwrite" into advice about the flag. */
async function writingOut<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ALREADY_EXISTS') throw e;
    throw new RlhfError('ALREADY_EXISTS', (e as Error).message, {
      field: '--out',
      fix: 'choose a new --out, or pass --overwrite to replace it',
    });
  }
}

async function summary(config: LlamaConfig): Promise<string> {
  const { headTypeOf, parameterCount } = await engine();
  return `${parameterCount(config).toLocaleString('en-US')} parameters, vocab ${config.vocab_size}, ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, ${headTypeOf(config)} head`;
}

async function init(f: InitFlags): Promise<void> {
  const { checkTokenizerFits, initWeights, parseLlamaConfig, Rng, saveModelDir, withTokenizerIds } =
    await engine();
  const seed = parseIntegerIn(f.seed, '--seed', 0, 2 ** 32 - 1);
  const rawConfig = await readConfigFile(f.config);
  const { json, tokenizer, source } = await chooseTokenizer(f, rawConfig);
  // The embedding follows the tokenizer unless the config fixes its size (then the tokenizer must fit).
  const raw = withTokenizerIds(rawConfig, tokenizer);
  const trained = f.tokenizerCorpus !== undefined;
  if (trained && raw.vocab_size !== undefined && raw.vocab_size !== tokenizer.vocabSize) {
    // A corpus can run out of merges before the asked size: the embedding gets one row per token the
    // trained tokenizer has, so every id the model can produce decodes.
    process.stderr.write(
      `note: vocab_size is ${tokenizer.vocabSize}, the size of ${source}, not the ${raw.vocab_size} of ${f.config}\n`,
    );
    raw.vocab_size = tokenizer.vocabSize;
  }
  raw.vocab_size ??= tokenizer.vocabSize;
  const config = parseLlamaConfig(raw, f.config);
  checkTokenizerFits(config, tokenizer, f.config, source);
  const weights = initWeights(config, new Rng(seed));
  await writingOut(
    saveModelDir(f.out, { config, tokenizerJson: json, weights }, { overwrite: f.overwrite === true }),
  );
  process.stdout.write(
    `initialised ${f.out}: ${await summary(config)} (tokenizer ${tokenizer.vocabSize} tokens)\n`,
  );
}

export function registerModel(program: Command): void {
  const model = program.command('model').summary('create, import, export, push and pull model directories');
  model
    .command('init')
    .summary('write a freshly initialised model directory')
    .description(
      [
        'Write a model directory (config.json, tokenizer.json, tokenizer_config.json, model.onnx) with',
        'HF-style random weights. --config is a JSON or YAML object of Llama config.json fields; fields it',
        'leaves out take the defaults. With --tokenizer-corpus a byte-level BPE is trained on the file',
        '(one document a line) and vocab_size is its size (a note says so when the config asked for another);',
        'with --tokenizer, vocab_size follows the tokenizer unless the config sets a larger one.',
        'The output directory appears whole or not at all.',
      ].join('\n'),
    )
    .requiredOption('--config <FILE>', 'partial Llama config (JSON, or YAML for .yaml/.yml)')
    .requiredOption('--out <DIR>', 'output directory (must not exist, or be empty, unless --overwrite)')
    .option('--tokenizer <FILE>', 'an HF tokenizer.json, or a directory holding one')
    .option('--tokenizer-corpus <FILE>', 'train a BPE tokenizer on this text file')
    .option('--vocab-size <N>', 'tokenizer size to train (default: the config vocab_size)')
    .option('--seed <N>', 'random seed for the weights', '0')
    .option('--overwrite', 'replace an existing output directory')
    .addHelpText(
      'after',
      '\nExample:\n  rlhf model init --config tiny.yaml --tokenizer-corpus data/corpus.txt --out models/base\n',
    )
    .action(init);

  model
    .command('import')
    .summary('import a Hugging Face checkpoint directory as a model directory')
    .description(
      [
        'Read config.json, model.safetensors (or sharded model-*-of-*.safetensors with',
        'model.safetensors.index.json; F32, F16 or BF16) and tokenizer.json from a directory saved by',
        "transformers' save_pretrained, check every parameter against config.json, and write a model directory.",
        '--from hf://<org>/<name>[@<revision>] reads the checkpoint from the Hugging Face cache (HF_HOME,',
        'HF_HUB_CACHE), downloading what is missing when online (HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1: cache only).',
      ].join('\n'),
    )
    .requiredOption('--from <HF_DIR|hf://ORG/NAME>', 'Hugging Face checkpoint directory, or a Hub model')
    .requiredOption('--out <DIR>', 'output model directory')
    .option('--overwrite', 'replace an existing output directory')
    .action(async (f: { from: string; out: string; overwrite?: boolean }) => {
      const { isHfUri } = await import('@rlhf/platform');
      const overwrite = f.overwrite === true;
      const { config } = await writingOut(
        isHfUri(f.from)
          ? importHfModel(f.from, '--from', f.out, overwrite)
          : (await engine()).importHfCheckpoint(f.from, f.out, { overwrite }),
      );
      process.stdout.write(`imported ${f.from} to ${f.out}: ${await summary(config)}\n`);
    });

  registerModelTransfer(model);

  interface ExportFlags {
    model: string;
    out: string;
    format: string;
    dtype: string;
    maxShardSize: string;
    overwrite?: boolean;
  }

  model
    .command('export')
    .summary('export a model directory as a Hugging Face checkpoint directory')
    .description(
      [
        'Write config.json, model.safetensors (or shards model-0000i-of-0000n.safetensors and',
        'model.safetensors.index.json above --max-shard-size), tokenizer.json, tokenizer_config.json and',
        "generation_config.json, which transformers' from_pretrained loads. --dtype float16 and bfloat16",
        'round each weight to nearest, ties to even, and set config.json torch_dtype to match.',
      ].join('\n'),
    )
    .requiredOption('--model <DIR>', 'model directory')
    .requiredOption('--out <DIR>', 'output directory')
    .option('--format <FORMAT>', 'checkpoint format; only "safetensors"', 'safetensors')
    .option('--dtype <DTYPE>', 'weight dtype: float32, bfloat16 or float16', 'float32')
    .option('--max-shard-size <SIZE>', 'largest safetensors file (GB = 10^9 bytes, GiB = 2^30)', '5GB')
    .option('--overwrite', 'replace an existing output directory')
    .action(async (f: ExportFlags) => {
      if (f.format !== 'safetensors') {
        throw invalidArgument('--format', `unknown format "${f.format}"`, 'use --format safetensors');
      }
      const { EXPORT_DTYPES, exportHfCheckpoint, parseShardSize } = await engine();
      if (!Object.hasOwn(EXPORT_DTYPES, f.dtype))
        throw invalidArgument(
          '--dtype',
          `unknown dtype "${f.dtype}"`,
          `use one of ${Object.keys(EXPORT_DTYPES).join(', ')}`,
        );
      const maxShardBytes = parseShardSize(f.maxShardSize, '--max-shard-size');
      await writingOut(
        exportHfCheckpoint(f.model, f.out, {
          overwrite: f.overwrite === true,
          dtype: f.dtype as keyof typeof EXPORT_DTYPES,
          maxShardBytes,
        }),
      );
      process.stdout.write(`exported ${f.model} to ${f.out} (Hugging Face, safetensors, ${f.dtype})\n`);
    });
}
