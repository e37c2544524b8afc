/**
 * Moving models and datasets between this machine and where runs read them (`rlhf model push|pull`,
 * `rlhf data push|pull`): nats-obj:// (the platform's Object Store, reached over NATS), s3:// (settings from
 * the AWS environment variables) and file:// (a path, e.g. a mounted volume); models also come from hf://.
 * Every write is whole or absent for a reader: a model's manifest.json goes last, a data object is one put,
 * a local directory or file is renamed into place. Files move by stream, so their size is not bounded by
 * memory (nor by the 2 GiB of one Node buffer).
 */
import { copyFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactRouter } from '@rlhf/platform';
import { invalidArgument, RlhfError } from '@rlhf/platform/core';
import { natsConfigOf } from './nats-flags.js';
import { ProgressBar } from './progress.js';

const megabytes = (bytes: number): number => Number((bytes / 1e6).toFixed(1));

/** A progress line in MB for a transfer of several files; nothing for small ones. */
export function byteProgress(label: string): (done: number, total: number, file: string) => void {
  let bar: ProgressBar | undefined;
  return (done, total, file) => {
    if (total < 8e6) return;
    bar ??= new ProgressBar({ label, total: megabytes(total), unit: 'MB' });
    bar.update(megabytes(done), file);
  };
}

/**
 * Runs `work` with an artifact store for the user's own process that reaches `uri` (from `flag`): NATS is
 * connected only for a nats-obj:// URI, with the command's NATS flags. Errors about the URI name the flag.
 */
export async function withStoreFor<T>(
  uri: string,
  flag: string,
  flags: object,
  name: string,
  work: (store: ArtifactRouter) => Promise<T>,
): Promise<T> {
  const { ArtifactRouter, ArtifactSandbox, connectNats, createLogger, parseArtifactUri } = await import(
    '@rlhf/platform'
  );
  const { asField } = await import('@rlhf/service-kit');
  const loc = parseArtifactUri(uri, flag);
  let nc: Awaited<ReturnType<typeof connectNats>> | null = null;
  if (loc.scheme === 'nats-obj') {
    const nats = natsConfigOf(flags, 0);
    nc = await connectNats({
      url: nats.url ?? 'nats://127.0.0.1:4222',
      auth: nats.auth,
      startWaitMs: nats.startWaitMs,
      name,
      logger: createLogger(name, { level: 'warn' }),
    });
  }
  const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
  try {
    return await asField(flag, () => work(store));
  } finally {
    store.close();
    await nc?.close();
  }
}

/** A local model directory (what `rlhf model init|import|train` write), or INVALID_ARGUMENT naming the flag. */
export async function mustBeModelDir(dir: string, flag: string): Promise<void> {
  for (const file of ['config.json', 'model.onnx'])
    if (!(await stat(join(dir, file)).catch(() => null)))
      throw invalidArgument(
        flag,
        `${dir} is not a model directory (no ${file})`,
        'pass a directory `rlhf model init`, `rlhf model import` or `rlhf train` wrote, or an hf://<org>/<name> model',
      );
}

/** Copies the plain files of a model directory into `into` (a fresh temporary directory). */
export async function copyModelFiles(from: string, into: string): Promise<void> {
  const { ARTIFACT_MARKER } = await import('@rlhf/platform');
  for (const e of await readdir(from, { withFileTypes: true }))
    if (e.isFile() && e.name !== ARTIFACT_MARKER) await copyFile(join(from, e.name), join(into, e.name));
}

/** ALREADY_EXISTS naming `flag` when the store holds `uri` and the user did not ask to replace it. */
export async function refuseExisting(
  store: ArtifactRouter,
  uri: string,
  flag: string,
  overwrite: boolean | undefined,
): Promise<void> {
  if (overwrite === true || !(await store.info(uri))) return;
  throw new RlhfError('ALREADY_EXISTS', `${uri} exists`, {
    field: flag,
    fix: `choose a new ${flag}, or pass --overwrite to replace it`,
  });
}

/** The size of a local file a flag names; NOT_FOUND naming the flag when it is absent. */
export async function localFileSize(path: string, flag: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error('not a regular file');
    return s.size;
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RlhfError(
      missing ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      missing ? `${path} does not exist` : `cannot read ${path}: ${(cause as Error).message}`,
      { field: flag, fix: 'pass an existing file', cause },
    );
  }
}

export const formatMegabytes = (bytes: number): string =>
  bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
