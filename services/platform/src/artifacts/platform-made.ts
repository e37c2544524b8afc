/**
 * What the platform made, and may therefore replace. A directory the platform writes (a model directory, a
 * directory of data files) carries the marker file `.rlhf-artifact`; an existing path without it belongs to
 * someone else and is never replaced, deleted or written into by a request from outside the process.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The marker file inside every directory the platform made. */
export const ARTIFACT_MARKER = '.rlhf-artifact';

const markerText = `${JSON.stringify({ kind: 'rlhf-artifact', note: 'made by the rlhf platform; it may replace this directory' })}\n`;

/** Writes the marker into `dir` (which must exist). */
export async function markPlatformMade(dir: string): Promise<void> {
  await writeFile(join(dir, ARTIFACT_MARKER), markerText);
}

/** A real directory (not a symlink) holding the marker as a regular file. */
export async function isPlatformMadeDir(dir: string): Promise<boolean> {
  const d = await lstat(dir).catch(() => null);
  if (!d?.isDirectory()) return false;
  const m = await lstat(join(dir, ARTIFACT_MARKER)).catch(() => null);
  return m?.isFile() ?? false;
}

/**
 * What stands at `path`, as far as replacing it goes: nothing (`absent`), something the platform made
 * (`platform`: a marked directory, or a regular file directly inside one), or anything else (`foreign`).
 */
export async function ownerOf(path: string): Promise<'absent' | 'platform' | 'foreign'> {
  const s = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (s === null) return 'absent';
  if (s.isDirectory()) return (await isPlatformMadeDir(path)) ? 'platform' : 'foreign';
  if (s.isFile()) return (await isPlatformMadeDir(dirname(path))) ? 'platform' : 'foreign';
  return 'foreign';
}

/**
 * Makes sure the directory `dir` may hold a data file the platform writes: a marked directory, or a new one
 * (created here, with its missing parents, and marked). Returns false for an existing unmarked directory or
 * anything that is not a directory.
 */
export async function prepareDataDir(dir: string): Promise<boolean> {
  const s = await lstat(dir).catch(() => null);
  if (s !== null) return isPlatformMadeDir(dir);
  await mkdir(dirname(dir), { recursive: true });
  // Made aside with its marker, then renamed into place, so it is never seen unmarked.
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(tmp);
  await markPlatformMade(tmp);
  try {
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
  }
  return isPlatformMadeDir(dir);
}
