/** Reading the JSON files of a checkpoint directory with errors that name the file. */
import { readFile } from 'node:fs/promises';
import { EngineError, invalidInput } from '../engine-error.js';

/**
 * The bytes of `path` as a plain Uint8Array view (no copy). Not a Buffer: `Buffer#slice` shares memory where
 * `Uint8Array#slice` copies, and decoders written for Uint8Array rely on the copy. A missing file is
 * NOT_FOUND naming `path`; anything else unreadable is INVALID_ARGUMENT.
 */
export async function readFileOrFail(path: string): Promise<Uint8Array> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT' || code === 'ENOTDIR';
    throw new EngineError(
      missing ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      missing ? `${path} does not exist` : `cannot read ${path}: ${(cause as Error).message}`,
      { field: path, cause },
    );
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readFileOrFail(path));
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON.parse's message: it quotes the file.
    throw invalidInput(`${path} is not valid JSON`, path, 'write the file again');
  }
}

/** `JSON.stringify` with two-space indents and a final newline, as HF writes its JSON files. */
export function prettyJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
