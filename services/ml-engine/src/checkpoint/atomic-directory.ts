/**
 * Publishing a directory all at once. A model directory is several files (config, tokenizer, weights,
 * ONNX graphs) and a reader that sees some of them would load a broken model, so we build it under a
 * temporary sibling name on the same filesystem and rename it into place: rename is atomic, so `out`
 * is either absent, the old directory, or the complete new one. A failure removes the temporary
 * directory, so no partial output is ever left behind under any name we own.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EngineError } from '../engine-error.js';

export interface AtomicDirectoryOptions {
  /**
   * Replace an existing non-empty `out` (default false: refuse, so a finished checkpoint is never lost).
   * A function decides per target, asked right before the rename: then only an absent `out` (not an empty
   * directory someone else made) counts as free, and anything else is replaced only when it answers true.
   */
  overwrite?: boolean | ((target: string) => Promise<boolean>);
}

const suffix = () => randomBytes(6).toString('hex');

/** `true` when nothing is at `path` or an empty directory is, `false` for anything else. */
async function isAbsentOrEmpty(path: string): Promise<boolean> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (info === undefined) return true;
  return info.isDirectory() && (await readdir(path)).length === 0;
}

async function isAbsent(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => null)) === null;
}

/**
 * Flushes every file and directory below `dir` to disk before the rename publishes it, so a crash right
 * after publishing cannot leave a complete-looking directory with empty files.
 */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await syncPath(path);
  }
  await syncPath(dir);
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates directory `out` by letting `fill` write into a fresh temporary directory (its argument), then
 * renaming that into place. Returns what `fill` returns.
 */
export async function writeDirectoryAtomically<T>(
  out: string,
  fill: (tempDir: string) => Promise<T>,
  options: AtomicDirectoryOptions = {},
): Promise<T> {
  const target = resolve(out);
  const parent = dirname(target);
  const refuse = () =>
    new EngineError(
      'ALREADY_EXISTS',
      `refusing to overwrite ${out}: it exists and is not an empty directory`,
      {
        field: out,
        fix: 'choose a new output path',
      },
    );
  const decide = typeof options.overwrite === 'function' ? options.overwrite : null;
  const free = (p: string) => (decide ? isAbsent(p) : isAbsentOrEmpty(p));
  const mayReplace = async () => (decide ? decide(target) : options.overwrite === true);
  if (!(await free(target)) && !(await mayReplace())) throw refuse();

  await mkdir(parent, { recursive: true });
  const temp = join(parent, `${basename(target)}.tmp-${suffix()}`);
  await mkdir(temp);
  let result: T;
  try {
    result = await fill(temp);
    await syncTree(temp);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }

  try {
    if (await free(target)) {
      // rename(2) replaces an empty directory in one step; fails if someone filled it meanwhile.
      await rename(temp, target);
    } else if (await mayReplace()) {
      await replaceViaAside(temp, target);
    } else {
      throw refuse();
    }
    await syncPath(parent);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    if (error instanceof EngineError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw refuse();
    throw error;
  }
  return result;
}

/**
 * Moves the old directory aside, the new one in, then deletes the old one. Between the two renames `out`
 * is briefly absent (never partial); if the second rename fails the old directory is put back.
 */
async function replaceViaAside(temp: string, target: string): Promise<void> {
  const aside = join(dirname(target), `${basename(target)}.old-${suffix()}`);
  await rename(target, aside);
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(aside, target).catch(() => {});
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}
