/** Dataset artifacts: read rows (JSONL or Parquet) from, and write JSONL rows to, an ArtifactStore. */
import { parseDatasetBytes } from '@rlhf/ml-engine';
import { type ArtifactStore, asRlhfError } from '@rlhf/platform';

/**
 * The rows of a dataset artifact, JSONL or Parquet, through the engine's one dataset reader. `parse` checks
 * each row; it gets `<uri>:<line>` (or `<uri>:row <n>` for Parquet) to name the row in its errors. An empty
 * artifact gives no rows: a shard of a run may hold none.
 */
export async function readJsonl<T = Record<string, unknown>>(
  store: ArtifactStore,
  uri: string,
  parse: (value: unknown, where: string) => T = (value) => value as T,
): Promise<T[]> {
  try {
    return await parseDatasetBytes(await store.get(uri), uri, parse, { allowEmpty: true });
  } catch (err) {
    // The engine raises its own error class; callers here catch RlhfError.
    throw asRlhfError(err) ?? err;
  }
}

export function jsonlBytes(rows: readonly unknown[]): Uint8Array {
  return new TextEncoder().encode(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

export async function writeJsonl(store: ArtifactStore, uri: string, rows: readonly unknown[]): Promise<void> {
  await store.put(uri, jsonlBytes(rows));
}
