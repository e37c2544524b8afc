/** Parsers of the artifact settings of a service: its artifact roots and its model cache's size limit. */
import { invalidArgument } from '../errors.js';
import { parseNumberIn } from './parse.js';

/**
 * Artifact roots: absolute directory paths separated by `:` (how a repeated flag and the environment
 * variable both arrive). A relative path is refused, since what it means would depend on the working directory.
 */
export function parseArtifactRoots(raw: string, field: string): string[] {
  const roots = raw.split(':').filter((r) => r.trim() !== '');
  for (const r of roots)
    if (!r.startsWith('/'))
      throw invalidArgument(
        field,
        `"${r}" is not an absolute path`,
        'pass an absolute directory, e.g. /data/rlhf',
      );
  return roots;
}

/** The model cache's size limit in GiB (fractions allowed), as bytes. */
export function parseModelCacheBytes(raw: string, field: string): number {
  return Math.round(parseNumberIn(raw, field, 0.001, 1e6) * 1024 ** 3);
}
