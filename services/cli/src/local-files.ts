/**
 * What the commands that run a stage's code on local files share (`rlhf judge`, `rlhf eval`,
 * `rlhf data pairs`): checking that the files their flags name exist, the `file://` URIs the stage code
 * reads, and errors that name the flag where the stage code names its own field.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asRlhfError, RlhfError } from '@rlhf/platform/core';

/** NOT_FOUND naming `flag` unless something exists at `path`. */
export async function mustExist(path: string, flag: string, what: string): Promise<void> {
  if (!(await stat(path).catch(() => null)))
    throw new RlhfError('NOT_FOUND', `${path} does not exist`, {
      field: flag,
      fix: `pass an existing ${what}`,
    });
}

export const fileUri = (path: string): string => `file://${resolve(path)}`;

/**
 * Runs `work`; an error whose field starts with one of `fields`' keys (a stage field such as `judge.model`)
 * is thrown again naming the flag that key maps to.
 */
export async function namingFlags<T>(fields: Record<string, string>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const known = asRlhfError(err);
    const prefix = Object.keys(fields).find((k) => known?.field?.startsWith(k));
    if (!known || prefix === undefined) throw err;
    throw new RlhfError(known.code, known.message, {
      field: fields[prefix] as string,
      ...(known.fix === undefined ? {} : { fix: known.fix }),
      cause: err,
    });
  }
}
