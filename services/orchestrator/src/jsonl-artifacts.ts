/** JSONL artifacts: read rows from, and write rows to, an ArtifactStore. */
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';

/**
 * The rows of a JSONL artifact (blank lines skipped). `parse` checks each row; it gets `<uri>:<line>` to name
 * the row in its errors.
 */
export async function readJsonl<T = Record<string, unknown>>(
  store: ArtifactStore,
  uri: string,
  parse: (value: unknown, where: string) => T = (value) => value as T,
): Promise<T[]> {
  const text = new TextDecoder().decode(await store.get(uri));
  const rows: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw invalidArgument(`${uri}:${i + 1}`, 'is not valid JSON', 'write one JSON object per line');
    }
    rows.push(parse(value, `${uri}:${i + 1}`));
  });
  return rows;
}

export function jsonlBytes(rows: readonly unknown[]): Uint8Array {
  return new TextEncoder().encode(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

export async function writeJsonl(store: ArtifactStore, uri: string, rows: readonly unknown[]): Promise<void> {
  await store.put(uri, jsonlBytes(rows));
}
