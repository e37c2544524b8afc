/**
 * hf:// models as engine model directories: the Hub snapshot (resolveHfModel: the Hugging Face cache,
 * downloaded when missing) imported once per commit into the model download cache as
 * `<cacheDir>/hf--<org>--<name>--<commit>/`. A commit never changes, so an entry that exists is whole
 * (the import publishes the directory atomically) and stays valid; a branch such as `main` is resolved to
 * its commit when the model is first loaded, and that commit is the model's version from then on.
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { importHfCheckpoint } from '@rlhf/ml-engine';
import { asRlhfError, parseHfUri, RlhfError, resolveHfModel } from '@rlhf/platform';

const field = 'model.uri';

/** The cache entry of `repo` at `commit`. */
export const hfEntryName = (repo: string, commit: string): string =>
  `hf--${repo.split('/').join('--')}--${commit}`;

const isModelDir = async (dir: string): Promise<boolean> =>
  (await stat(join(dir, 'model.onnx')).catch(() => null))?.isFile() === true;

/**
 * The version of an hf:// model: `hf:<commit>`, from the cache when it holds the revision (no call to the
 * Hub, so a service rechecking its models does not poll it), else resolved (and downloaded) online.
 */
export async function hfModelVersion(uri: string): Promise<string> {
  const snapshot = await resolveHfModel(uri, field, { offline: true }).catch(() =>
    resolveHfModel(uri, field),
  );
  return `hf:${basename(snapshot)}`;
}

/** The Hub snapshot of the hf:// model `uri` (downloaded when missing) and its cache entry's name. */
export async function resolveHfEntry(
  uri: string,
): Promise<{ snapshot: string; name: string; version: string }> {
  const { repo } = parseHfUri(uri, field);
  const snapshot = await resolveHfModel(uri, field);
  const commit = basename(snapshot);
  return { snapshot, name: hfEntryName(repo, commit), version: `hf:${commit}` };
}

/**
 * Makes `dir` the engine model directory of the snapshot of `uri`, unless an earlier import of the same
 * commit is there already.
 */
export async function importHfSnapshot(uri: string, snapshot: string, dir: string): Promise<void> {
  if (await isModelDir(dir)) return;
  try {
    await importHfCheckpoint(snapshot, dir);
  } catch (err) {
    // Another process imported the same commit first; theirs is the same model.
    if (await isModelDir(dir)) return;
    // The engine names the checkpoint file; say which model it came from.
    const e = asRlhfError(err);
    if (!e) throw err;
    throw new RlhfError(e.code, `${uri}: ${e.message}`, {
      field,
      ...(e.fix === undefined ? {} : { fix: e.fix }),
      cause: err,
    });
  }
}
