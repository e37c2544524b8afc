/**
 * Model directories as artifacts. A `file://` URI is a directory used in place (model-download-cache.ts
 * keeps local copies of the others). A `nats-obj://bucket/prefix`
 * URI holds one object per file under the prefix plus `manifest.json` (file names, sizes, digests), written
 * last: a model exists exactly when its manifest does, so a reader never loads half a model.
 */
import { copyFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirectoryAtomically } from '@rlhf/ml-engine';
import {
  ARTIFACT_MARKER,
  type ArtifactStore,
  joinArtifactUri,
  parseWritableUri,
  RlhfError,
  sameDigest,
  writeFileAtomic,
} from '@rlhf/platform';
import { hfModelVersion } from './hf-model-dir.js';

export const MODEL_MANIFEST = 'manifest.json';

/** A plain file name inside a model directory: no path separators, no `..`, not hidden. */
export const isModelFileName = (name: unknown): name is string =>
  typeof name === 'string' && /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(name) && name !== MODEL_MANIFEST;

export interface ModelManifest {
  kind: 'rlhf-model-dir';
  files: Array<{ name: string; size: number; digest: string }>;
}

/** Told after each file of a model is copied: bytes so far of `totalBytes` (for a progress line). */
export type ModelTransferProgress = (doneBytes: number, totalBytes: number, file: string) => void;

/** Uploads a local model directory to `uri`; the manifest goes last. Returns the manifest's digest. */
export async function publishModelDir(
  store: ArtifactStore,
  localDir: string,
  uri: string,
  onFile?: ModelTransferProgress,
): Promise<string> {
  const loc = parseWritableUri(uri, 'uri');
  if (loc.scheme === 'file')
    throw new RlhfError('INVALID_ARGUMENT', `publish needs a nats-obj:// or s3:// URI, got ${uri}`, {
      field: 'uri',
    });
  const names: string[] = [];
  let totalBytes = 0;
  for (const entry of await readdir(localDir, { withFileTypes: true })) {
    // A pulled model directory keeps the manifest it came with; the new one is written below.
    if (!entry.isFile() || entry.name === ARTIFACT_MARKER || entry.name === MODEL_MANIFEST) continue;
    names.push(entry.name);
    totalBytes += (await stat(join(localDir, entry.name))).size;
  }
  const files: ModelManifest['files'] = [];
  let doneBytes = 0;
  for (const name of names) {
    // By stream: a weights file (model.onnx.data) may be larger than one Node buffer can hold.
    const info = await store.putFile(joinArtifactUri(uri, name), join(localDir, name));
    files.push({ name, size: info.size, digest: info.digest });
    doneBytes += info.size;
    onFile?.(doneBytes, totalBytes, name);
  }
  files.sort((a, b) => a.name.localeCompare(b.name));
  const manifest = new TextEncoder().encode(
    `${JSON.stringify({ kind: 'rlhf-model-dir', files } satisfies ModelManifest, null, 2)}\n`,
  );
  const info = await store.put(joinArtifactUri(uri, MODEL_MANIFEST), manifest);
  return info.digest;
}

/**
 * The version of the model at `uri`: its manifest digest, for a local directory its model.onnx mtime, for
 * an hf:// model its commit.
 */
export async function modelVersion(store: ArtifactStore, uri: string): Promise<string> {
  const loc = await store.resolve(uri, 'model.uri', 'read');
  if (loc.scheme === 'hf') return hfModelVersion(uri);
  if (loc.scheme === 'file') {
    try {
      const s = await stat(join(loc.path, 'model.onnx'));
      return `mtime:${s.mtimeMs}:${s.size}`;
    } catch {
      throw new RlhfError('NOT_FOUND', `no model directory at ${uri}`, {
        field: 'model.uri',
        fix: 'check the URI; a model directory holds config.json, tokenizer.json and model.onnx',
      });
    }
  }
  const info = await store.info(joinArtifactUri(uri, MODEL_MANIFEST));
  if (!info)
    throw new RlhfError('NOT_FOUND', `no model at ${uri} (no ${MODEL_MANIFEST})`, {
      field: 'model.uri',
      fix: 'check the URI, or publish the model first',
    });
  return info.digest;
}

/**
 * Writes the files of the model at nats-obj `uri` into the existing directory `dir`, each checked against
 * its manifest digest, and the manifest last.
 */
export async function fetchModelFiles(
  store: ArtifactStore,
  uri: string,
  dir: string,
  onFile?: ModelTransferProgress,
): Promise<void> {
  const manifestBytes = await store.get(joinArtifactUri(uri, MODEL_MANIFEST));
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as ModelManifest;
    if (!Array.isArray(manifest.files)) throw new Error('no files');
  } catch {
    throw new RlhfError('FAILED_PRECONDITION', `${uri}/${MODEL_MANIFEST} is not a model manifest`, {
      field: 'model.uri',
      fix: 'publish the model again',
    });
  }
  const totalBytes = manifest.files.reduce((sum, f) => sum + (Number(f.size) || 0), 0);
  let doneBytes = 0;
  for (const f of manifest.files) {
    // A manifest names plain files of the model directory; anything else would write outside it.
    if (!isModelFileName(f.name))
      throw new RlhfError('FAILED_PRECONDITION', `${uri}/${MODEL_MANIFEST} names a file outside the model`, {
        field: 'model.uri',
        fix: 'publish the model again',
      });
    const path = join(dir, f.name);
    const got = await store.getFile(joinArtifactUri(uri, f.name), path);
    if (!sameDigest(got.digest, f.digest)) {
      await rm(path, { force: true });
      throw new RlhfError('INTERNAL', `${uri}/${f.name} does not match its manifest digest`, {
        field: 'model.uri',
        fix: 'publish the model again',
      });
    }
    doneBytes += got.size;
    onFile?.(doneBytes, totalBytes, f.name);
  }
  // The manifest as stored, byte for byte: its digest is the model's version (model-download-cache.ts).
  await writeFileAtomic(join(dir, MODEL_MANIFEST), manifestBytes);
}

/**
 * Saves the model at `uri` as the standalone model directory `out` (what `rlhf generate --model` and
 * `rlhf model export` read), published atomically: `out` is refused when it exists and is not empty, unless
 * `overwrite`, and a failure leaves nothing behind. A file:// model's files are copied.
 */
export async function saveModelFromArtifact(
  store: ArtifactStore,
  uri: string,
  out: string,
  options: { overwrite?: boolean; onFile?: ModelTransferProgress } = {},
): Promise<void> {
  const loc = await store.resolve(uri, 'model.uri', 'read');
  await modelVersion(store, uri); // NOT_FOUND, naming the URI, before anything is written
  await writeDirectoryAtomically(
    out,
    async (tmp) => {
      if (loc.scheme !== 'file') return fetchModelFiles(store, uri, tmp, options.onFile);
      for (const entry of await readdir(loc.path, { withFileTypes: true }))
        if (entry.isFile() && entry.name !== ARTIFACT_MARKER)
          await copyFile(join(loc.path, entry.name), join(tmp, entry.name));
    },
    options.overwrite === undefined ? {} : { overwrite: options.overwrite },
  );
}
