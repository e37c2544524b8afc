/**
 * The one dataset reader: rows of a JSONL or Parquet file, from a path (the CLI, training) or from bytes (the
 * services and stages, which get datasets from the artifact store). The format is told by the file's magic
 * bytes first and its name second, so a Parquet file is never parsed as JSON lines; anything else is refused
 * in one line naming what the file looks like and what to give instead (the file is the error's field, which
 * every caller prints before the message). Rows then go through the record parsers of records.ts, which know
 * the TRL, UltraFeedback and RLHFlow shapes.
 */
import { open, readFile } from 'node:fs/promises';
import { EngineError, invalidInput } from '../engine-error.js';
import { parseJsonlLines, type RowParser, readJsonl } from './jsonl.js';

export type DatasetFormat = 'jsonl' | 'parquet';

const FIX = 'give a JSONL file (one JSON object per line) or a Parquet file';

/** File signatures of formats people export datasets in that are not read here, to name them in the error. */
const OTHER_FORMATS: ReadonlyArray<{ magic: number[]; name: string; fix: string }> = [
  { magic: [0x1f, 0x8b], name: 'a gzip-compressed file', fix: 'decompress it first (gunzip)' },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: 'a zstd-compressed file', fix: 'decompress it first (zstd -d)' },
  {
    magic: [0x50, 0x4b, 0x03, 0x04],
    name: 'a zip archive',
    fix: 'extract the JSONL or Parquet file from it',
  },
  {
    magic: [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31],
    name: 'an Arrow IPC file',
    fix: "save it as Parquet (datasets' to_parquet) or JSONL (to_json(lines=True))",
  },
];

const PAR1 = [0x50, 0x41, 0x52, 0x31];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/**
 * The format of a dataset file from its first bytes (`head`) and its name. Parquet files begin with `PAR1`;
 * a `.parquet` name whose bytes are not Parquet is refused rather than read as text.
 */
export function detectDatasetFormat(head: Uint8Array, source: string): DatasetFormat {
  if (startsWith(head, PAR1)) return 'parquet';
  const lower = source.toLowerCase();
  if (lower.endsWith('.parquet') || lower.endsWith('.pq'))
    throw invalidInput(
      'named as Parquet but does not start with the Parquet magic bytes "PAR1"',
      source,
      'give a complete Parquet file (it may be truncated or a Git LFS pointer)',
    );
  for (const other of OTHER_FORMATS)
    if (startsWith(head, other.magic))
      throw invalidInput(`${other.name}, not JSONL or Parquet`, source, other.fix);
  const first = new TextDecoder()
    .decode(head.subarray(0, 64))
    .replace(/^\uFEFF/, '')
    .trimStart();
  if (first.startsWith('['))
    throw invalidInput(
      'a JSON array file, not JSONL',
      source,
      'write one JSON object per line (jq -c ".[]" file.json > file.jsonl)',
    );
  return 'jsonl';
}

/** Parquet values as JSON values: INT64 columns arrive as bigint, and the record parsers expect numbers. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/**
 * A Parquet row as a JSON object. A column a row has no value in reads as null, which is how a file of mixed
 * rows says the field is absent; those fields are dropped, as if the row were a JSONL line without them.
 */
function parquetRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (v !== null && v !== undefined) out[k] = plain(v);
  return out;
}

async function parquetRows<T>(
  bytes: Uint8Array,
  source: string,
  parse: RowParser<T>,
  options: { allowEmpty?: boolean } = {},
): Promise<T[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  // Loaded here, not at the top: every engine user imports this module, few of them read Parquet.
  const [{ parquetReadObjects }, { compressors }] = await Promise.all([
    import('hyparquet'),
    import('hyparquet-compressors'),
  ]);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, compressors });
  } catch (cause) {
    throw new EngineError('INVALID_ARGUMENT', `cannot read Parquet: ${(cause as Error).message}`, {
      field: source,
      fix: 'write it again with pyarrow or datasets (to_parquet); snappy, gzip, zstd, brotli and lz4 are read',
      cause,
    });
  }
  if (rows.length === 0 && !options.allowEmpty)
    throw invalidInput(`empty dataset: ${source} has no rows`, source, 'give a Parquet file with rows');
  // Rows are named by their 1-based position, as lines are in JSONL.
  return rows.map((row, i) => parse(parquetRow(row), `${source}:row ${i + 1}`));
}

/**
 * The records of a dataset held in memory (an artifact-store object); `source` names it in errors. An empty
 * dataset is an error unless `allowEmpty` (a run's own intermediate artifacts may hold no rows).
 */
export async function parseDatasetBytes<T>(
  bytes: Uint8Array,
  source: string,
  parse: RowParser<T>,
  options: { allowEmpty?: boolean } = {},
): Promise<T[]> {
  if (detectDatasetFormat(bytes.subarray(0, 64), source) === 'parquet')
    return parquetRows(bytes, source, parse, options);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalidInput('not valid UTF-8', source, 'write the JSONL as UTF-8 text');
  }
  const out: T[] = [];
  for await (const record of parseJsonlLines(text.split('\n'), source, parse, options)) out.push(record);
  return out;
}

/** All records of a dataset file, JSONL (streamed line by line) or Parquet. */
export async function loadDataset<T>(path: string, parse: RowParser<T>): Promise<T[]> {
  let head: Uint8Array;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = new Uint8Array(64);
      const { bytesRead } = await handle.read(buffer, 0, 64, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new EngineError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      `cannot read ${path}: ${(cause as Error).message}`,
      { field: path, fix: FIX, cause },
    );
  }
  if (detectDatasetFormat(head, path) === 'parquet') return parquetRows(await readFile(path), path, parse);
  const out: T[] = [];
  for await (const record of readJsonl(path, parse)) out.push(record);
  return out;
}
