/**
 * The shared secret of a service's gRPC calls, on both ends. The server reads it from a file (a mounted
 * Kubernetes Secret, reread when the file changes so a rotated Secret takes effect without a restart) or
 * from the environment, keeps only its SHA-256 digest, and compares the digest of what a call presents in
 * constant time. A client reads the same file or variable and sends `authorization: Bearer <token>`.
 * The token never appears in a log line or an error text: messages name the file or variable instead.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { RlhfError } from '../errors.js';

/** The metadata key a call carries its token in (gRPC metadata keys are lower case). */
export const authMetadataKey = 'authorization';
/** The environment variable naming the token file, for servers and clients alike. */
export const authTokenFileEnv = 'RLHF_AUTH_TOKEN_FILE';
/** The environment variable holding the token itself (when no file is given). */
export const authTokenEnv = 'RLHF_AUTH_TOKEN';

const missingFix = `send the metadata "${authMetadataKey}: Bearer <token>" with the token of the server's --auth-token-file (rlhf commands: --auth-token-file FILE or ${authTokenFileEnv})`;

/** A token as a server holds it: the digest of the current token, and where it came from (for logs). */
export interface TokenSource {
  /** SHA-256 of the current token. */
  digest(): Buffer;
  /** `file <path>` or `env RLHF_AUTH_TOKEN`: what a log line may say about the token. */
  readonly origin: string;
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

/**
 * The token in `text` (surrounding white space, e.g. a file's final newline, dropped). It must be usable as
 * a header value: printable ASCII without spaces. `where` names the file or variable in errors.
 */
export function parseToken(text: string, where: string, field: string): string {
  const token = text.trim();
  if (token === '')
    throw new RlhfError('INVALID_ARGUMENT', `${where} holds no token`, {
      field,
      fix: 'put the token (e.g. `openssl rand -hex 32`) in it',
    });
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new RlhfError('INVALID_ARGUMENT', `the token in ${where} has spaces or non-ASCII characters`, {
      field,
      fix: 'use printable ASCII without spaces, e.g. the output of `openssl rand -hex 32`',
    });
  return token;
}

/** The token in `path` (client or server side); INVALID_ARGUMENT naming `field` when unreadable or empty. */
export function readTokenFile(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new RlhfError('INVALID_ARGUMENT', `cannot read the token file ${path}`, {
      field,
      fix: 'pass a readable file holding the token',
      cause,
    });
  }
  return parseToken(text, `the token file ${path}`, field);
}

/** A token given as a value (the RLHF_AUTH_TOKEN variable). */
export function tokenFromValue(value: string, origin: string): TokenSource {
  const digest = sha256(parseToken(value, origin, origin));
  return { digest: () => digest, origin };
}

/**
 * The token in `path`, reread when the file's identity, size or modification time changes (looked at most
 * every `recheckMs`). A rotation caught half-written (empty or unreadable) keeps the previous token.
 */
export function tokenFromFile(path: string, field = '--auth-token-file', recheckMs = 5000): TokenSource {
  const stamp = (): string => {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  };
  let digest = sha256(readTokenFile(path, field));
  let seen = stamp();
  let checkedAt = Date.now();
  return {
    origin: `file ${path}`,
    digest: () => {
      const now = Date.now();
      if (now - checkedAt >= recheckMs) {
        checkedAt = now;
        try {
          const next = stamp();
          if (next !== seen) {
            digest = sha256(readTokenFile(path, field));
            seen = next;
          }
        } catch {
          // Keep the token in force; the next look may find the rotation complete.
        }
      }
      return digest;
    },
  };
}

/**
 * Null when `values` (the call's `authorization` metadata) carry the token of `source`; otherwise the
 * UNAUTHENTICATED error to answer. Digests of equal length are compared in constant time, so neither the
 * token's content nor its length leaks through timing.
 */
export function checkBearer(values: readonly unknown[], source: TokenSource): RlhfError | null {
  const fail = (message: string) =>
    new RlhfError('UNAUTHENTICATED', message, { field: authMetadataKey, fix: missingFix });
  if (values.length === 0) return fail('this call carries no bearer token');
  if (values.length > 1) return fail('this call carries more than one authorization value');
  const value = values[0];
  if (typeof value !== 'string') return fail('the authorization value is not text');
  const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  if (!m) return fail('the authorization value is not "Bearer <token>"');
  if (!timingSafeEqual(sha256(m[1] as string), source.digest()))
    return fail("the bearer token is not the server's");
  return null;
}
