/**
 * The artifact roots of a local run: what `rlhf run` confines its own reads of the spec's URIs and its
 * workers (`rlhf serve ... --artifact-root`, through RLHF_ARTIFACT_ROOTS) to. The user owns the spec, so
 * the roots are the run's output directory and, for every file:// URI in the spec, the directory it names
 * (a model directory) or the directory holding it (a dataset file), both as written and as resolved
 * through symlinks, so a dataset linked in from elsewhere still reads.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every `file://` string anywhere in `value` (a run spec). */
export function fileUrisIn(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('file://') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(fileUrisIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(fileUrisIn);
  return [];
}

async function rootsOf(path: string): Promise<string[]> {
  const s = await stat(path).catch(() => null);
  const real = await realpath(path).catch(() => null);
  if (s?.isDirectory()) return real ? [path, real] : [path];
  return real ? [dirname(path), dirname(real)] : [dirname(path)];
}

export async function localRunRoots(spec: unknown, out: string): Promise<string[]> {
  const roots = [resolve(out)];
  const realOut = await realpath(out).catch(() => null);
  if (realOut) roots.push(realOut);
  for (const uri of fileUrisIn(spec)) {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch {
      continue; // not a file URL: the spec's validation names it
    }
    // A spec path with `..` gets no root of its own; the sandbox refuses it, naming the field.
    if (uri.split('/').includes('..')) continue;
    roots.push(...(await rootsOf(path)));
  }
  return [...new Set(roots)];
}
