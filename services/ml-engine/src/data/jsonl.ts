/**
 * Streaming JSONL: one JSON value per line, blank lines ignored, read line by line so a large dataset never
 * sits in memory as one string. Every error names `file:line`, and a file without a single record is an
 * error, because training on nothing would otherwise "succeed" with no steps.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { EngineError, invalidInput } from '../engine-error.js';

/** Turns one parsed line into a record; `where` is `file:line`, to prefix error messages with. */
export type RowParser<T> = (value: unknown, where: string) => T;

/** Records from lines of JSONL text; `source` names the file in errors. */
export async function* parseJsonlLines<T>(
  lines: AsyncIterable<string> | Iterable<string>,
  source: string,
  parse: RowParser<T>,
  options: { allowEmpty?: boolean } = {},
): AsyncGenerator<T> {
  let lineNo = 0;
  let records = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // JSON.parse's own message quotes the line; an error may reach a remote caller, so it names only
      // the file, the line and what was expected.
      throw invalidInput(
        `${source}:${lineNo}: not valid JSON (expected one JSON object per line)`,
        `${source}:${lineNo}`,
        'write one JSON object per line',
      );
    }
    records++;
    yield parse(value, `${source}:${lineNo}`);
  }
  if (records === 0 && !options.allowEmpty) {
    throw invalidInput(
      `empty dataset: ${source} has no records`,
      source,
      'give a JSONL file with one record per line',
    );
  }
}

/** Streams the records of a JSONL file. */
export async function* readJsonl<T>(path: string, parse: RowParser<T>): AsyncGenerator<T> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new EngineError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      `cannot read ${path}: ${(cause as Error).message}`,
      {
        field: path,
        cause,
      },
    );
  }
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    yield* parseJsonlLines(lines, path, parse);
  } catch (cause) {
    // A read failure mid-file (EISDIR, EIO) arrives as a bare Node error; say which file.
    if (cause instanceof EngineError || typeof (cause as NodeJS.ErrnoException).code !== 'string')
      throw cause;
    throw new EngineError('INVALID_ARGUMENT', `cannot read ${path}: ${(cause as Error).message}`, {
      field: path,
      cause,
    });
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** All records of a JSONL file, for datasets small enough to index (shuffling needs random access). */
export async function loadJsonl<T>(path: string, parse: RowParser<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const record of readJsonl(path, parse)) out.push(record);
  return out;
}
