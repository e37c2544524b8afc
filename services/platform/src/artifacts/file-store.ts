/** `file://` artifacts on a local or shared volume, written atomically (temporary file, fsync, rename). */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { copyFileAtomic, fileDigest, streamToFileAtomic } from './file-stream.js';
import { ARTIFACT_MARKER } from './platform-made.js';
import type { AccessMode } from './sandbox.js';
import { type ArtifactInfo, type ArtifactStore, notFound, sha256Digest } from './store.js';
import { type ArtifactLocation, formatArtifactUri, parseArtifactUri } from './uri.js';

function pathOf(uri: string): string {
  const loc = parseArtifactUri(uri);
  if (loc.scheme !== 'file') throw new Error(`file store given ${uri}`);
  return loc.path;
}

/** Writes bytes to `path` so that readers see either the old file or the whole new one. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  await streamToFileAtomic(path, [data]);
}

async function walk(dir: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    // Temporary files of writes in progress and the platform's marker are not artifacts.
    else if (!e.name.includes('.tmp-') && e.name !== ARTIFACT_MARKER) out.push(p);
  }
  return out;
}

/** Unconfined: for the user's own paths. Services reach files through ArtifactRouter and its sandbox. */
export class FileArtifactStore implements ArtifactStore {
  async resolve(uri: string, field: string, _mode: AccessMode): Promise<ArtifactLocation> {
    return parseArtifactUri(uri, field);
  }

  async put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    await writeFileAtomic(pathOf(uri), data);
    return { uri, size: data.byteLength, digest: sha256Digest(data) };
  }

  async putFile(uri: string, path: string): Promise<ArtifactInfo> {
    return { uri, ...(await copyFileAtomic(path, pathOf(uri))) };
  }

  async get(uri: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(pathOf(uri)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(uri);
      throw err;
    }
  }

  async getFile(uri: string, path: string): Promise<ArtifactInfo> {
    try {
      return { uri, ...(await copyFileAtomic(pathOf(uri), path)) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(uri);
      throw err;
    }
  }

  async info(uri: string): Promise<ArtifactInfo | null> {
    try {
      const s = await stat(pathOf(uri));
      if (!s.isFile()) return null;
      return { uri, ...(await fileDigest(pathOf(uri))) };
    } catch {
      return null;
    }
  }

  async delete(uri: string): Promise<void> {
    await rm(pathOf(uri), { force: true, recursive: true });
  }

  async list(prefixUri: string): Promise<string[]> {
    const prefix = pathOf(prefixUri);
    // A prefix may be a directory or the start of file names inside its parent.
    const root = (await stat(prefix).catch(() => null))?.isDirectory() ? prefix : dirname(prefix);
    const files = await walk(root);
    return files
      .filter((f) => f.startsWith(prefix))
      .sort()
      .map((path) => formatArtifactUri({ scheme: 'file', path }));
  }
}
