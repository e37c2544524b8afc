/**
 * Output directories a service writes for a request: built aside, marked as platform-made, and renamed
 * into place (ml-engine's writeDirectoryAtomically). An existing target is replaced only when it is a
 * directory the platform made; anything else there — a user's directory, a file, a symlink — is left as it
 * is and the request is answered ALREADY_EXISTS naming the field.
 */
import { writeDirectoryAtomically } from '@rlhf/ml-engine';
import { asRlhfError, isPlatformMadeDir, markPlatformMade, ownerOf, RlhfError } from '@rlhf/platform';

function refuse(uri: string, field: string): RlhfError {
  return new RlhfError('ALREADY_EXISTS', `${uri} exists and was not made by the platform`, {
    field,
    fix: 'write to a new URI; an existing path is replaced only when the platform made it',
  });
}

/** Writes the directory `path` (the request's `uri` in `field`) with what `fill` puts in its temp dir. */
export async function writePlatformDir(
  path: string,
  field: string,
  uri: string,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  const owner = await ownerOf(path);
  if (owner === 'foreign' || (owner === 'platform' && !(await isPlatformMadeDir(path))))
    throw refuse(uri, field);
  try {
    await writeDirectoryAtomically(
      path,
      async (tmp) => {
        await fill(tmp);
        await markPlatformMade(tmp);
      },
      { overwrite: isPlatformMadeDir },
    );
  } catch (err) {
    if (asRlhfError(err)?.code === 'ALREADY_EXISTS') throw refuse(uri, field);
    throw err;
  }
}
