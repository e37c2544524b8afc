/**
 * Moving models to and from Hugging Face. An HF checkpoint directory is what `save_pretrained` writes and
 * `from_pretrained` reads: `config.json`, `model.safetensors` (HF names, [out, in] layouts, no
 * `lm_head.weight` when the embeddings are tied), `tokenizer.json`, `tokenizer_config.json` and
 * `generation_config.json`. Import accepts what HF tools write (sharded weights, F16/BF16, a tied
 * `lm_head.weight` saved anyway, old `rotary_emb.inv_freq` buffers) and rejects what it cannot honour.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidInput } from '../engine-error.js';
import { type LlamaConfig, parseLlamaConfig } from '../model/config.js';
import { checkWeights, type Weights, weightSpecs } from '../model/weights.js';
import { readChatTemplate } from '../tokenizer/chat-template.js';
import { tokenizerFromJson } from '../tokenizer/tokenizer.js';
import { loadTokenizer, writeTokenizerFiles } from '../tokenizer/tokenizer-files.js';
import type { TokenizerJson } from '../tokenizer/tokenizer-json.js';
import { type AtomicDirectoryOptions, writeDirectoryAtomically } from './atomic-directory.js';
import {
  endIdsOf,
  extraEndIds,
  GENERATION_CONFIG,
  generationConfigJson,
  generationEndIds,
} from './end-tokens.js';
import { type HfTensor, readHfWeights } from './hf-weights.js';
import { prettyJson, readJsonFile } from './json-file.js';
import { type ModelDirContents, openModelDir, saveModelDir } from './model-dir.js';
import { checkTokenizerFits, specialTokensOf, withTokenizerIds } from './model-tokenizer.js';
import type { F32Source } from './safetensors.js';
import { DEFAULT_MAX_SHARD_SIZE, parseShardSize, writeShardedSafetensors } from './safetensors-shards.js';
import { foldTwoLabelHead } from './two-label-head.js';

/** The dtypes `rlhf model export --dtype` writes, as config.json names them, and their safetensors codes. */
export const EXPORT_DTYPES = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;
export type ExportDtype = keyof typeof EXPORT_DTYPES;

/**
 * config.json as `save_pretrained` writes it (`transformers_version` left out): the weights' dtype under
 * both names transformers has used for it, `torch_dtype` (read by every version) and `dtype` (4.56 on).
 */
export function hfConfigJson(config: LlamaConfig, dtype: ExportDtype = 'float32'): Record<string, unknown> {
  return { ...config, torch_dtype: dtype, dtype };
}

export interface ExportOptions extends AtomicDirectoryOptions {
  /** The weights' dtype in the checkpoint (default float32); half floats are rounded to nearest even. */
  dtype?: ExportDtype;
  /** Largest shard in bytes (default 5 GB, Hugging Face's); a checkpoint that fits one is model.safetensors. */
  maxShardBytes?: number;
}

/** Writes the model directory `modelDir` as an HF checkpoint directory at `out`, atomically. */
export async function exportHfCheckpoint(
  modelDir: string,
  out: string,
  options: ExportOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'float32';
  if (!(dtype in EXPORT_DTYPES))
    throw invalidInput(
      `dtype must be one of ${Object.keys(EXPORT_DTYPES).join(', ')}, got ${dtype}`,
      'dtype',
    );
  // Tensors are read from the model directory one at a time as the safetensors files are written.
  const { info, weights } = await openModelDir(modelDir);
  const { config, tokenizerJson, chatTemplate, endTokenIds } = info;
  const tensors = new Map<string, F32Source>();
  for (const spec of weightSpecs(config)) tensors.set(spec.name, weights.get(spec.name) as F32Source);
  const specials = specialTokensOf(config, tokenizerJson, join(modelDir, 'config.json'));
  await writeDirectoryAtomically(
    out,
    async (dir) => {
      await writeFile(join(dir, 'config.json'), prettyJson(hfConfigJson(config, dtype)));
      await writeShardedSafetensors(
        dir,
        tensors,
        EXPORT_DTYPES[dtype],
        options.maxShardBytes ?? parseShardSize(DEFAULT_MAX_SHARD_SIZE, 'maxShardBytes'),
      );
      await writeTokenizerFiles(dir, tokenizerJson, specials, config.max_position_embeddings, chatTemplate);
      await writeFile(join(dir, GENERATION_CONFIG), prettyJson(generationConfigJson(config, endTokenIds)));
    },
    options,
  );
}

/** Buffers older transformers versions saved with the weights; recomputed from the config, so dropped. */
const DERIVED_BUFFER = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * The checkpoint's tensors as the model's weights: extras HF tools save are dropped, and every tensor is
 * checked against the shape config.json implies, naming the file that holds it.
 */
function weightsOf(config: LlamaConfig, tensors: Map<string, HfTensor>, configFile: string): Weights {
  const specs = new Map(weightSpecs(config).map((s) => [s.name, s.shape]));
  const embedding = tensors.get('model.embed_tokens.weight');
  const weights: Weights = new Map();
  for (const [name, tensor] of tensors) {
    if (DERIVED_BUFFER.test(name)) continue;
    if (name === 'lm_head.weight' && config.tie_word_embeddings && !specs.has(name)) {
      if (embedding !== undefined && sameValues(tensor.data, embedding.data)) continue;
      throw invalidInput(
        `${tensor.file}: lm_head.weight differs from model.embed_tokens.weight, but ${configFile} has "tie_word_embeddings": true`,
        `${configFile}:tie_word_embeddings`,
        `set "tie_word_embeddings": false in ${configFile} to keep a separate output layer`,
      );
    }
    const shape = specs.get(name);
    if (shape === undefined) {
      throw invalidInput(
        `${tensor.file}: unexpected parameter ${name} (not part of the model config.json describes)`,
        name,
        `check architectures, num_hidden_layers and tie_word_embeddings in ${configFile}`,
      );
    }
    if (tensor.shape.join(',') !== shape.join(',')) {
      throw invalidInput(
        `${tensor.file}: ${name} has shape [${tensor.shape.join(', ')}], ${configFile} implies [${shape.join(', ')}]`,
        name,
        `check hidden_size, intermediate_size, num_*_heads and vocab_size in ${configFile}`,
      );
    }
    weights.set(name, tensor.data);
  }
  return weights;
}

/**
 * Imports the HF checkpoint directory `hfDir` as a model directory at `out` (atomically); returns what it
 * wrote. Token ids config.json leaves out come from the checkpoint's tokenizer files.
 */
export async function importHfCheckpoint(
  hfDir: string,
  out: string,
  options: AtomicDirectoryOptions = {},
): Promise<ModelDirContents> {
  const configFile = join(hfDir, 'config.json');
  const tokenizerFile = join(hfDir, 'tokenizer.json');
  const parsed = await readJsonFile(configFile);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidInput(`${configFile}: expected a JSON object`, configFile);
  }
  let raw = parsed as Record<string, unknown>;
  // HF chat models may list several end tokens (Llama 3: end of text, end of message, end of turn). The
  // tokenizer's own EOS (else the first) becomes config.json's; the others, and generation_config.json's,
  // end generation too (end-tokens.ts).
  const listed = [
    ...endIdsOf(raw.eos_token_id, `${configFile}:eos_token_id`),
    ...(await generationEndIds(hfDir)),
  ];
  if (Array.isArray(raw.eos_token_id)) {
    const tokenizerEos = (await loadTokenizer(hfDir)).eosId;
    raw = { ...raw, eos_token_id: listed.includes(tokenizerEos) ? tokenizerEos : listed[0] };
  }
  const tokenizerJson = (await readJsonFile(tokenizerFile)) as TokenizerJson;
  const { tensors, source } = await readHfWeights(hfDir);
  const hfTokenizer = await loadTokenizer(hfDir);
  // A tokenizer without BOS (tokenizer_config.json "bos_token": null, as Qwen2's) keeps none, whatever id
  // config.json gives: no token is written as its BOS.
  if (hfTokenizer.bosId === undefined) raw = { ...raw, bos_token_id: null };
  if (['bos_token_id', 'eos_token_id', 'pad_token_id'].some((f) => raw[f] == null))
    raw = withTokenizerIds(raw, hfTokenizer);
  // save_pretrained always writes tie_word_embeddings; a hand-written config that leaves it out means
  // whatever the weights say (HF's Llama default is untied, which a checkpoint without lm_head cannot be).
  if (!('tie_word_embeddings' in raw)) raw = { ...raw, tie_word_embeddings: !tensors.has('lm_head.weight') };
  raw = foldTwoLabelHead(raw, tensors, configFile);
  const config = parseLlamaConfig(raw, configFile);
  const specials = specialTokensOf(config, tokenizerJson, configFile);
  checkTokenizerFits(
    config,
    tokenizerFromJson(tokenizerJson, { specials, source: tokenizerFile }),
    configFile,
    tokenizerFile,
  );

  const weights = weightsOf(config, tensors, configFile);
  checkWeights(config, weights, source);
  const chatTemplate = await readChatTemplate(hfDir);
  const endTokenIds = extraEndIds(config, listed, `${configFile}:eos_token_id`);
  const contents: ModelDirContents = {
    config,
    tokenizerJson,
    weights,
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
    ...(endTokenIds.length ? { endTokenIds } : {}),
  };
  await saveModelDir(out, contents, options);
  return contents;
}
