/**
 * The weights of a Hugging Face checkpoint directory: one `model.safetensors`, or shards
 * `model-0000i-of-0000n.safetensors` listed by `model.safetensors.index.json` (`weight_map`: tensor name ->
 * shard file). Each tensor remembers its file, so a later error can name the shard at fault.
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EngineError, invalidInput } from '../engine-error.js';
import { readJsonFile } from './json-file.js';
import { type LoadedTensor, readSafetensors } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface HfTensor extends LoadedTensor {
  /** The safetensors file that holds it. */
  file: string;
}

export interface HfWeights {
  tensors: Map<string, HfTensor>;
  /** The file that lists the weights (the single file, or the index), for errors about missing ones. */
  source: string;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

function addAll(into: Map<string, HfTensor>, from: Map<string, LoadedTensor>, file: string): void {
  for (const [name, tensor] of from) {
    const other = into.get(name);
    if (other !== undefined) {
      throw invalidInput(
        `${file}: tensor ${name} is also in ${other.file}`,
        name,
        'a tensor must be in exactly one shard',
      );
    }
    into.set(name, { ...tensor, file });
  }
}

async function readSharded(dir: string, indexFile: string): Promise<Map<string, HfTensor>> {
  const index = (await readJsonFile(indexFile)) as { weight_map?: unknown } | null;
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw invalidInput(
      `${indexFile}: "weight_map" must map tensor names to shard files`,
      `${indexFile}:weight_map`,
      'write the index with save_pretrained',
    );
  }
  const weightMap = map as Record<string, unknown>;
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards sit beside the index; a path elsewhere is refused rather than followed.
    if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard || shard.startsWith('.')) {
      throw invalidInput(
        `${indexFile}: weight_map puts ${name} in ${JSON.stringify(shard)}, which is not a file name in ${dir}`,
        `${indexFile}:weight_map.${name}`,
        'shard names are plain file names such as model-00001-of-00002.safetensors',
      );
    }
    shards.add(shard);
  }
  const tensors = new Map<string, HfTensor>();
  for (const shard of [...shards].sort()) {
    const file = join(dir, shard);
    addAll(tensors, (await readSafetensors(file)).tensors, file);
  }
  for (const [name, shard] of Object.entries(weightMap)) {
    if (tensors.get(name)?.file !== join(dir, shard as string)) {
      throw invalidInput(
        `${indexFile}: weight_map puts ${name} in ${shard}, but that file has no tensor ${name}`,
        `${indexFile}:weight_map.${name}`,
        'write the checkpoint again with save_pretrained',
      );
    }
  }
  return tensors;
}

/** Reads every tensor of the checkpoint in `dir` (F16 and BF16 widened to F32). */
export async function readHfWeights(dir: string): Promise<HfWeights> {
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) {
    const tensors = new Map<string, HfTensor>();
    addAll(tensors, (await readSafetensors(single)).tensors, single);
    return { tensors, source: single };
  }
  const index = join(dir, INDEX_FILE);
  if (await exists(index)) return { tensors: await readSharded(dir, index), source: index };
  const pytorch =
    (await exists(join(dir, 'pytorch_model.bin'))) ||
    (await exists(join(dir, 'pytorch_model.bin.index.json')));
  throw new EngineError(
    'NOT_FOUND',
    `${single} does not exist (nor ${INDEX_FILE} for a sharded checkpoint)`,
    {
      field: single,
      fix: pytorch
        ? 'only safetensors checkpoints are read: save the model with save_pretrained(..., safe_serialization=True)'
        : 'pass a Hugging Face checkpoint directory saved with save_pretrained',
    },
  );
}
