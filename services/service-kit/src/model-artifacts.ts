/**
 * Model directories as artifacts. A `file://` URI is a directory used in place. A `nats-obj://bucket/prefix`
 * URI holds one object per file under the prefix plus `manifest.json` (file names, sizes, digests), written
 * last: a model exists exactly when its manifest does, so a reader never loads half a model.
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirectoryAtomically } from '@rlhf/ml-engine';
import {
  type ArtifactStore,
  joinArtifactUri,
  parseArtifactUri,
  RlhfError,
  sameDigest,
  sha256Digest,
  writeFileAtomic,
} from '@rlhf/platform';

export const MODEL_MANIFEST = 'manifest.json';

export interface ModelManifest {
  kind: 'rlhf-model-dir';
  files: Array<{ name: string; size: number; digest: string }>;
}

/** Uploads a local model directory to `uri`; the manifest goes last. Returns the manifest's digest. */
export async function publishModelDir(store: ArtifactStore, localDir: string, uri: string): Promise<string> {
  const loc = parseArtifactUri(uri, 'uri');
  if (loc.scheme === 'file')
    throw new RlhfError('INVALID_ARGUMENT', `publish needs a nats-obj:// URI, got ${uri}`, { field: 'uri' });
  const files: ModelManifest['files'] = [];
  for (const entry of await readdir(localDir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const data = new Uint8Array(await readFile(join(localDir, entry.name)));
    const info = await store.put(joinArtifactUri(uri, entry.name), data);
    files.push({ name: entry.name, size: info.size, digest: info.digest });
  }
  files.sort((a, b) => a.name.localeCompare(b.name));
  const manifest = new TextEncoder().encode(
    `${JSON.stringify({ kind: 'rlhf-model-dir', files } satisfies ModelManifest, null, 2)}\n`,
  );
  const info = await store.put(joinArtifactUri(uri, MODEL_MANIFEST), manifest);
  return info.digest;
}

/** The version of the model at `uri`: its manifest digest, or for a local directory its model.onnx mtime. */
export async function modelVersion(store: ArtifactStore, uri: string): Promise<string> {
  const loc = parseArtifactUri(uri, 'model.uri');
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
async function fetchModelFiles(store: ArtifactStore, uri: string, dir: string): Promise<void> {
  const manifest = JSON.parse(
    new TextDecoder().decode(await store.get(joinArtifactUri(uri, MODEL_MANIFEST))),
  ) as ModelManifest;
  for (const f of manifest.files) {
    const data = await store.get(joinArtifactUri(uri, f.name));
    if (!sameDigest(sha256Digest(data), f.digest)) {
      throw new RlhfError('INTERNAL', `${uri}/${f.name} does not match its manifest digest`, {
        field: 'model.uri',
        fix: 'publish the model again',
      });
    }
    await writeFileAtomic(join(dir, f.name), data);
  }
  await writeFileAtomic(join(dir, MODEL_MANIFEST), new TextEncoder().encode(JSON.stringify(manifest)));
}

/**
 * A local directory holding the model at `uri`: the directory itself for file://, otherwise a download into
 * `<cacheDir>/<digest>` (made atomically, reused while the digest is the same).
 */
export async function localModelDir(store: ArtifactStore, uri: string, cacheDir: string): Promise<string> {
  const loc = parseArtifactUri(uri, 'model.uri');
  if (loc.scheme === 'file') return loc.path;
  const digest = await modelVersion(store, uri);
  const dir = join(cacheDir, digest.replace(/[^A-Za-z0-9_-]/g, '_'));
  if (await stat(join(dir, MODEL_MANIFEST)).catch(() => null)) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await fetchModelFiles(store, uri, tmp);
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another request fetched the same version first; theirs is as good as ours.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return dir;
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
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const loc = parseArtifactUri(uri, 'model.uri');
  await modelVersion(store, uri); // NOT_FOUND, naming the URI, before anything is written
  await writeDirectoryAtomically(
    out,
    async (tmp) => {
      if (loc.scheme !== 'file') return fetchModelFiles(store, uri, tmp);
      for (const entry of await readdir(loc.path, { withFileTypes: true }))
        if (entry.isFile()) await copyFile(join(loc.path, entry.name), join(tmp, entry.name));
    },
    options,
  );
}
