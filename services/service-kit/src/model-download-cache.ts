/**
 * The download cache of nats-obj:// models: `<cacheDir>/<manifest digest>/`, one directory per model
 * version, shared by the processes of one user (the directory is private to that user, mode 0700).
 *
 * - Every entry is checked before use: its manifest's bytes against the digest the store holds for the
 *   model, and each file against the manifest's size and digest. A torn entry (a crash mid-copy, a full
 *   disk) or an altered one is logged, removed and fetched again.
 * - The cache has a size limit: after a download, the least recently used entries (by last use, the entry
 *   directory's mtime, touched on each use) are removed until the cache fits, never one in use.
 * - In use means leased: a lease file `<cacheDir>/.leases/<entry>.<pid>.<n>` exists while a process holds
 *   the entry (loading a model, training from it); a lease of a process that has died does not count.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ArtifactStore, RlhfError, sameDigest } from '@rlhf/platform';
import { importHfSnapshot, resolveHfEntry } from './hf-model-dir.js';
import {
  fetchModelFiles,
  isModelFileName,
  MODEL_MANIFEST,
  type ModelManifest,
  modelVersion,
} from './model-artifacts.js';

/** What the cache reports: torn entries refetched, entries pruned. */
export interface CacheLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface DownloadCacheOptions {
  /** Size limit in bytes (default 20 GiB). */
  maxBytes?: number;
  logger?: CacheLog;
}

export interface HeldModelDir {
  dir: string;
  /** Ends the lease: the entry may be pruned again. */
  release(): Promise<void>;
}

export const defaultCacheMaxBytes = 20 * 1024 ** 3;

/** $RLHF_MODEL_CACHE, else `<tmp>/rlhf-model-cache-<uid>`: per user, never a world-shared directory. */
export function defaultModelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const user = process.getuid?.() ?? (env.USER || 'user');
  return env.RLHF_MODEL_CACHE || join(tmpdir(), `rlhf-model-cache-${user}`);
}

/**
 * Makes `dir` (mode 0700) or checks it: a real directory owned by this user; group and other access is
 * removed. Anything else is FAILED_PRECONDITION: another user could plant or alter models there.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  // Whatever stands there (a file, a symlink) is judged below rather than by mkdir's error.
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => {});
  const s = await lstat(dir).catch(() => null);
  const uid = process.getuid?.();
  if (!s?.isDirectory() || (uid !== undefined && s.uid !== uid))
    throw new RlhfError('FAILED_PRECONDITION', `the model cache ${dir} is not a directory of this user`, {
      field: 'RLHF_MODEL_CACHE',
      fix: 'point RLHF_MODEL_CACHE at a directory this user owns, or unset it for the per-user default',
    });
  if ((s.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

const entryName = (digest: string) => digest.replace(/[^A-Za-z0-9_-]/g, '_');
const leaseDir = (cacheDir: string) => join(cacheDir, '.leases');
let leaseCounter = 0;

async function takeLease(cacheDir: string, entry: string): Promise<() => Promise<void>> {
  await mkdir(leaseDir(cacheDir), { recursive: true, mode: 0o700 });
  const file = join(leaseDir(cacheDir), `${entry}.${process.pid}.${leaseCounter++}`);
  await writeFile(file, '');
  return () => rm(file, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Entries held by a live process (stale leases of dead ones are removed on the way). */
async function leasedEntries(cacheDir: string): Promise<Set<string>> {
  const held = new Set<string>();
  for (const name of await readdir(leaseDir(cacheDir)).catch(() => [] as string[])) {
    const m = /^(.*)\.(\d+)\.\d+$/.exec(name);
    if (!m) continue;
    if (alive(Number(m[2]))) held.add(m[1] as string);
    else await rm(join(leaseDir(cacheDir), name), { force: true });
  }
  return held;
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `SHA-256=${hash.digest('base64url')}`;
}

/** The entry holds the model whose manifest has `digest`, every file whole and unaltered. */
export async function entryIsIntact(dir: string, digest: string): Promise<boolean> {
  try {
    const bytes = await readFile(join(dir, MODEL_MANIFEST));
    const manifestDigest = `SHA-256=${createHash('sha256').update(bytes).digest('base64url')}`;
    if (!sameDigest(manifestDigest, digest)) return false;
    const manifest = JSON.parse(bytes.toString('utf8')) as ModelManifest;
    for (const f of manifest.files) {
      if (!isModelFileName(f.name)) return false;
      const path = join(dir, f.name);
      const s = await lstat(path);
      if (!s.isFile() || s.size !== f.size || !sameDigest(await fileDigest(path), f.digest)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isFile()) total += (await stat(join(dir, e.name)).catch(() => null))?.size ?? 0;
  }
  return total;
}

/**
 * Removes least recently used entries until the cache holds at most `maxBytes`; `keep` and leased
 * entries stay whatever their age.
 */
export async function pruneModelCache(
  cacheDir: string,
  maxBytes: number,
  o: { keep?: string; logger?: CacheLog } = {},
): Promise<string[]> {
  const entries: Array<{ name: string; size: number; used: number }> = [];
  for (const e of await readdir(cacheDir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.') || e.name.includes('.tmp-')) continue;
    const path = join(cacheDir, e.name);
    entries.push({ name: e.name, size: await dirSize(path), used: (await stat(path)).mtimeMs });
  }
  let total = entries.reduce((a, e) => a + e.size, 0);
  if (total <= maxBytes) return [];
  const leased = await leasedEntries(cacheDir);
  const pruned: string[] = [];
  for (const e of entries.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (e.name === o.keep || leased.has(e.name)) continue;
    await rm(join(cacheDir, e.name), { recursive: true, force: true });
    total -= e.size;
    pruned.push(e.name);
  }
  if (pruned.length)
    o.logger?.info({ cacheDir, pruned, bytes: total, maxBytes }, 'model cache over its limit: pruned');
  return pruned;
}

/**
 * A checked local copy of the nats-obj:// or s3:// model at `uri`, leased until `release()`; an hf:// model
 * imported into the cache (hf-model-dir.ts), leased the same way; a file:// model is its own directory
 * (resolved by the store's sandbox), with nothing to release.
 */
export async function acquireModelDir(
  store: ArtifactStore,
  uri: string,
  cacheDir: string,
  o: DownloadCacheOptions = {},
): Promise<HeldModelDir> {
  const loc = await store.resolve(uri, 'model.uri', 'read');
  if (loc.scheme === 'file') return { dir: loc.path, release: async () => {} };
  if (loc.scheme === 'hf') return acquireHfModelDir(uri, cacheDir, o);
  const digest = await modelVersion(store, uri);
  await ensurePrivateDir(cacheDir);
  const name = entryName(digest);
  const dir = join(cacheDir, name);
  const release = await takeLease(cacheDir, name);
  try {
    if (await lstat(dir).catch(() => null)) {
      if (await entryIsIntact(dir, digest)) {
        const now = new Date();
        await utimes(dir, now, now);
        return { dir, release };
      }
      o.logger?.warn({ uri, entry: dir }, 'cached model is torn or altered; fetching it again');
      await rm(dir, { recursive: true, force: true });
    }
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    try {
      await fetchModelFiles(store, uri, tmp);
      await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
        // Another process fetched the same version first; theirs is as good as ours once checked.
        if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
        await rm(tmp, { recursive: true, force: true });
        if (!(await entryIsIntact(dir, digest)))
          throw new RlhfError('UNAVAILABLE', `the cached copy of ${uri} is being replaced`, {
            field: 'model.uri',
            fix: 'retry',
          });
      });
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await pruneModelCache(cacheDir, o.maxBytes ?? defaultCacheMaxBytes, {
      keep: name,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    return { dir, release };
  } catch (err) {
    await release();
    throw err;
  }
}

async function acquireHfModelDir(
  uri: string,
  cacheDir: string,
  o: DownloadCacheOptions,
): Promise<HeldModelDir> {
  await ensurePrivateDir(cacheDir);
  const { snapshot, name } = await resolveHfEntry(uri);
  const dir = join(cacheDir, name);
  const release = await takeLease(cacheDir, name);
  try {
    await importHfSnapshot(uri, snapshot, dir);
    const now = new Date();
    await utimes(dir, now, now);
    await pruneModelCache(cacheDir, o.maxBytes ?? defaultCacheMaxBytes, {
      keep: name,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    return { dir, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** `acquireModelDir` released at once: the directory, for a caller that reads it right away (tests, tools). */
export async function localModelDir(store: ArtifactStore, uri: string, cacheDir: string): Promise<string> {
  const held = await acquireModelDir(store, uri, cacheDir);
  await held.release();
  return held.dir;
}
