/** Reading the PEM files that TLS flags name, for servers and clients alike. */
import { readFileSync } from 'node:fs';
import { RlhfError } from '../errors.js';

/** A PEM file's bytes; a file that cannot be read is INVALID_ARGUMENT naming the flag that gave it. */
export function readPem(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new RlhfError('INVALID_ARGUMENT', `cannot read ${path}`, {
      field,
      fix: 'pass a readable PEM file',
      cause,
    });
  }
}
