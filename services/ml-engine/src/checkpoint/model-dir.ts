/**
 * The model directory (docs/ARCHITECTURE.md, section 3): `config.json` (HF Llama fields), `tokenizer.json` and
 * `tokenizer_config.json` (HF format), and `model.onnx`, the inference graph whose initializers are the
 * weights under their HF names (kept in `model.onnx.data` beside it for models above 1 GiB of weights). The directory is written whole or not at all, and every way it can be
 * broken (missing file, unknown config field, corrupt ONNX, wrong shapes) fails on load naming the file.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, invalidInput } from '../engine-error.js';
import { parseLlamaConfig } from '../model/config.js';
import { checkWeights } from '../model/weights.js';
import { decodeModel } from '../onnx/onnx-decode.js';
import { checkChatTemplate, readChatTemplate } from '../tokenizer/chat-template.js';
import { tokenizerFromJson } from '../tokenizer/tokenizer.js';
import { loadTokenizer, writeTokenizerFiles } from '../tokenizer/tokenizer-files.js';
import type { TokenizerJson } from '../tokenizer/tokenizer-json.js';
import { type AtomicDirectoryOptions, writeDirectoryAtomically } from './atomic-directory.js';
import { extraEndIds, GENERATION_CONFIG, generationConfigJson, generationEndIds } from './end-tokens.js';
import { prettyJson, readFileOrFail, readJsonFile } from './json-file.js';
import type { LoadedModelDir, ModelDirContents, ModelDirInfo } from './loaded-model.js';
import { type ModelOnnxOptions, writeModelOnnx } from './model-onnx-file.js';
import { checkSpecialIdsAgree, checkTokenizerFits, specialTokensOf } from './model-tokenizer.js';
import { checkOnnxParameters, type WeightLoader, weightLoaders, weightsFromOnnx } from './onnx-weights.js';

export const MODEL_DIR_FILES = {
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  model: 'model.onnx',
  /** Present when the weights are too large to keep inside model.onnx (model-onnx-file.ts). */
  modelData: 'model.onnx.data',
} as const;

export type { LoadedModelDir, ModelDirContents, ModelDirInfo } from './loaded-model.js';

/**
 * Checks a model before anything is written: the config reads back as written, its special-token ids are
 * tokens of the tokenizer, the tokenizer fits the embedding, and the weights match the config.
 */
function checkContents(contents: ModelDirContents) {
  const { config, tokenizerJson, weights } = contents;
  const checked = parseLlamaConfig(JSON.parse(JSON.stringify(config)), 'config');
  const specials = specialTokensOf(checked, tokenizerJson, 'config');
  const tokenizer = tokenizerFromJson(tokenizerJson, { specials, source: 'tokenizerJson' });
  checkTokenizerFits(checked, tokenizer, 'config', 'tokenizerJson');
  checkWeights(checked, weights, 'weights');
  if (contents.chatTemplate !== undefined) checkChatTemplate(contents.chatTemplate, 'chatTemplate');
  if (contents.endTokenIds) extraEndIds(checked, contents.endTokenIds, 'endTokenIds');
  return { config: checked, specials };
}

/** Writes a model directory at `out` atomically (refusing a non-empty `out` unless `overwrite`). */
export async function saveModelDir(
  out: string,
  contents: ModelDirContents,
  options: AtomicDirectoryOptions & ModelOnnxOptions = {},
): Promise<void> {
  const { config, specials } = checkContents(contents);
  await writeDirectoryAtomically(
    out,
    async (dir) => {
      await writeFile(join(dir, MODEL_DIR_FILES.config), prettyJson(config));
      await writeTokenizerFiles(
        dir,
        contents.tokenizerJson,
        specials,
        config.max_position_embeddings,
        contents.chatTemplate,
      );
      await writeModelOnnx(dir, config, contents.weights, options);
      if (contents.endTokenIds?.length)
        await writeFile(
          join(dir, GENERATION_CONFIG),
          prettyJson(generationConfigJson(config, contents.endTokenIds)),
        );
    },
    options,
  );
}

async function checkIsDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'ENOENT' || cause.code === 'ENOTDIR') {
      throw new EngineError('NOT_FOUND', `model directory ${dir} does not exist`, {
        field: dir,
        fix: 'create one with `rlhf model init` or `rlhf model import`',
        cause,
      });
    }
    throw cause;
  });
  if (!info.isDirectory()) {
    throw invalidInput(`${dir} is not a directory`, dir, 'pass the model directory, not a file in it');
  }
}

async function loadParts(dir: string) {
  await checkIsDirectory(dir);
  const configFile = join(dir, MODEL_DIR_FILES.config);
  const tokenizerFile = join(dir, MODEL_DIR_FILES.tokenizer);
  const modelFile = join(dir, MODEL_DIR_FILES.model);

  const config = parseLlamaConfig(await readJsonFile(configFile), configFile);
  const tokenizerJson = (await readJsonFile(tokenizerFile)) as TokenizerJson;
  const tokenizer = await loadTokenizer(dir);
  checkSpecialIdsAgree(config, tokenizer, configFile, join(dir, MODEL_DIR_FILES.tokenizerConfig));
  checkTokenizerFits(config, tokenizer, configFile, tokenizerFile);

  const model = decodeModel(await readFileOrFail(modelFile), modelFile);
  const chatTemplate = await readChatTemplate(dir);
  const endTokenIds = extraEndIds(config, await generationEndIds(dir), join(dir, GENERATION_CONFIG));
  const info: ModelDirInfo = {
    config,
    tokenizer,
    tokenizerJson,
    dir,
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
    ...(endTokenIds.length ? { endTokenIds } : {}),
  };
  return { info, model, modelFile };
}

/** Loads and checks a model directory written by `saveModelDir` (or by hand, in the same layout). */
export async function loadModelDir(dir: string): Promise<LoadedModelDir> {
  const { info, model, modelFile } = await loadParts(dir);
  return { ...info, weights: await weightsFromOnnx(model, info.config, modelFile) };
}

/**
 * A model directory checked as `loadModelDir` checks it, with each weight read only when its loader is
 * called: an export converts and writes one tensor at a time.
 */
export async function openModelDir(
  dir: string,
): Promise<{ info: ModelDirInfo; weights: Map<string, WeightLoader> }> {
  const { info, model, modelFile } = await loadParts(dir);
  return { info, weights: await weightLoaders(model, info.config, modelFile) };
}

/**
 * Loads and checks a model directory as `loadModelDir` does, but leaves the weights on disk (their shapes and
 * data file are checked): for a caller that runs model.onnx in ORT, which reads them itself, so a large
 * model is not held twice.
 */
export async function loadModelDirInfo(dir: string): Promise<ModelDirInfo> {
  const { info, model, modelFile } = await loadParts(dir);
  await checkOnnxParameters(model, info.config, modelFile);
  return info;
}
