/**
 * Whole files moved by stream, never held in memory: a model's weights file can be larger than the 2 GiB
 * Node reads into one buffer. Each copy digests the bytes as they pass, and a written file appears under
 * its name only when complete (temporary sibling, fsync, rename), as writeFileAtomic does for bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';

export interface StreamedFile {
  size: number;
  /** `SHA-256=<base64url>`, as sha256Digest gives for the same bytes. */
  digest: string;
}

/** The size and SHA-256 of a local file, read in chunks. */
export async function fileDigest(path: string): Promise<StreamedFile> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { size, digest: `SHA-256=${hash.digest('base64url')}` };
}

/**
 * Writes the chunks of `source` to `path` so that readers see either the old file or the whole new one.
 * `accept` sees the size and digest of what arrived before the file is renamed into place; when it
 * throws (a digest that does not match), the temporary file is removed and nothing is written.
 */
export async function streamToFileAtomic(
  path: string,
  source: Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  accept?: (got: StreamedFile) => void | Promise<void>,
): Promise<StreamedFile> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'w');
  const hash = createHash('sha256');
  let size = 0;
  let got: StreamedFile;
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.byteLength;
      let at = 0;
      while (at < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at);
        at += bytesWritten;
      }
    }
    await handle.sync();
    got = { size, digest: `SHA-256=${hash.digest('base64url')}` };
    await accept?.(got);
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
  return got;
}

/** Copies the local file `from` to `to` by stream, atomically for readers of `to`. */
export function copyFileAtomic(from: string, to: string): Promise<StreamedFile> {
  // Opened only when the copy starts reading: a stream made earlier could fail (a missing file) while no
  // one listens yet, which Node raises as an uncaught error instead of a rejection.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield* createReadStream(from);
  }
  return streamToFileAtomic(to, chunks());
}
