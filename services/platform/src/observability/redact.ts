/**
 * One redaction function for everything that may hold a secret on its way to a log line, an error text or
 * `--help`: the `user:password@` (or `token@`) of any URL, NKey seeds, JWTs (a creds file holds both), and
 * any secret value the caller knows (a password read from a file). What stays is enough to tell which
 * server and which user: `nats://alice:***@nats:4222`.
 */

const MASK = '***';

/** `scheme://user:pass@` -> `scheme://user:***@`; `scheme://token@` -> `scheme://***@`. */
const urlUserinfo = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*)@/gi;
/** An NKey seed: `S` + a key-type prefix + base32 (58 characters in all). */
const nkeySeed = /\bS[UAONCPX][A-Z2-7]{56}\b/g;
/** A JWT (header.claims.signature, base64url), e.g. a NATS user JWT. */
const jwt = /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;

/** Secrets shorter than this are not searched for in free text (they would mask ordinary words). */
const MIN_SECRET = 3;

export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s !== undefined && s.length >= MIN_SECRET) out = out.split(s).join(MASK);
  }
  return out
    .replace(urlUserinfo, (_m, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon >= 0 ? `${scheme}${info.slice(0, colon)}:${MASK}@` : `${scheme}${MASK}@`;
    })
    .replace(nkeySeed, (m) => `${m.slice(0, 2)}${MASK}`)
    .replace(jwt, `<jwt ${MASK}>`);
}
