/**
 * NATS credentials the way operators hand them out: `user:password@` or `token@` in the URL, a user with a
 * password file, a token file, a creds file (user JWT + NKey seed), an NKey seed file, and TLS with a CA and
 * a client certificate. Files are named, not inlined, so a Kubernetes Secret mounted as files works as is
 * and rotated credentials are read again on every reconnect. Everything read here is also returned as a list
 * of secrets, so the connection's logs and errors can mask them.
 */
import { readFileSync } from 'node:fs';
import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from '@nats-io/transport-node';
import { type NatsAuth, natsAuthFields } from '../config/nats-flags.js';
import { invalidArgument } from '../errors.js';

export type { NatsAuth };

function fieldName(key: keyof NatsAuth): string {
  const f = natsAuthFields[key];
  return `${f.flag} / ${f.env}`;
}

/** What connect() needs: servers without credentials, the authenticators, TLS, and the secrets to mask. */
export interface ResolvedNatsAuth {
  servers: string[];
  authenticator: Authenticator[];
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Every secret value involved (passwords, tokens, seeds, JWTs): masked in logs and errors. */
  secrets: string[];
}

function readSecret(path: string, key: keyof NatsAuth): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalidArgument(
      fieldName(key),
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'point it at a readable file (e.g. a mounted Kubernetes Secret key)',
    );
  }
  // A Secret written with `echo` ends in a newline that is not part of the password.
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw invalidArgument(fieldName(key), `${path} is empty`, 'put the secret in the file');
  return value;
}

function decodeUserinfo(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Splits credentials out of the URL list (the nats.js client ignores them there) and reads every file, so a
 * missing or malformed file is an error naming its flag before any connection is tried.
 */
export function resolveNatsAuth(url: string, auth: NatsAuth = {}): ResolvedNatsAuth {
  const secrets: string[] = [];
  let urlUser: string | undefined;
  let urlPass: string | undefined;
  let tlsScheme = false;
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `nats://${s}`);
      if (u.protocol === 'tls:') tlsScheme = true;
      if (u.username !== '' || u.password !== '') {
        const user = decodeUserinfo(u.username);
        const pass = u.password === '' ? undefined : decodeUserinfo(u.password);
        if (urlUser === undefined) {
          urlUser = user;
          urlPass = pass;
        }
        secrets.push(...(pass !== undefined ? [pass, u.password] : [user, u.username]));
        u.username = '';
        u.password = '';
      }
      return u.toString().replace(/\/$/, '');
    });

  const authenticator: Authenticator[] = [];
  const user = auth.user ?? urlUser;
  if (auth.passwordFile !== undefined) {
    if (user === undefined) {
      throw invalidArgument(
        fieldName('passwordFile'),
        'a password needs a user',
        `set ${fieldName('user')} (or write nats://USER@host)`,
      );
    }
    const pass = readSecret(auth.passwordFile, 'passwordFile');
    secrets.push(pass);
    authenticator.push(usernamePasswordAuthenticator(user, pass));
  } else if (auth.user !== undefined || (urlUser !== undefined && urlPass !== undefined)) {
    if (urlPass === undefined || (auth.user !== undefined && auth.user !== urlUser)) {
      throw invalidArgument(
        fieldName('user'),
        `user "${auth.user}" has no password`,
        `set ${fieldName('passwordFile')} to a file holding it`,
      );
    }
    authenticator.push(usernamePasswordAuthenticator(user as string, urlPass));
  } else if (urlUser !== undefined) {
    // `nats://TOKEN@host`: a user name without a password is a token, as in the nats CLI.
    authenticator.push(tokenAuthenticator(urlUser));
  }
  if (auth.tokenFile !== undefined) {
    const token = readSecret(auth.tokenFile, 'tokenFile');
    secrets.push(token);
    authenticator.push(tokenAuthenticator(token));
  }
  if (auth.credsFile !== undefined) {
    const path = auth.credsFile;
    const creds = readSecret(path, 'credsFile');
    const jwt = /-{3,}BEGIN NATS USER JWT-{3,}\s*(\S+)\s*-{3,}END NATS USER JWT-{3,}/.exec(creds);
    const seed = /-{3,}BEGIN USER NKEY SEED-{3,}\s*(S[A-Z2-7]+)\s*-{3,}END USER NKEY SEED-{3,}/.exec(creds);
    if (!jwt?.[1] || !seed?.[1]) {
      throw invalidArgument(
        fieldName('credsFile'),
        `${path} is not a NATS creds file (a user JWT and an NKey seed block)`,
        'use the file `nsc generate creds` writes',
      );
    }
    secrets.push(jwt[1], seed[1]);
    // As read: nats.js's parser needs the newline that ends the seed block.
    authenticator.push(
      credsAuthenticator(() => new TextEncoder().encode(`${readSecret(path, 'credsFile')}\n`)),
    );
  }
  if (auth.nkeySeedFile !== undefined) {
    const path = auth.nkeySeedFile;
    const seed = readSecret(path, 'nkeySeedFile').trim();
    secrets.push(seed);
    try {
      nkeys.fromSeed(new TextEncoder().encode(seed));
    } catch {
      throw invalidArgument(
        fieldName('nkeySeedFile'),
        `${path} does not hold an NKey seed`,
        'put the user seed (SU...) from `nk -gen user` in the file',
      );
    }
    authenticator.push(
      nkeyAuthenticator(() => new TextEncoder().encode(readSecret(path, 'nkeySeedFile').trim())),
    );
  }

  if ((auth.tlsCertFile === undefined) !== (auth.tlsKeyFile === undefined)) {
    throw invalidArgument(
      fieldName(auth.tlsCertFile === undefined ? 'tlsCertFile' : 'tlsKeyFile'),
      'a client certificate needs its key',
      `set ${fieldName('tlsCertFile')} and ${fieldName('tlsKeyFile')} together`,
    );
  }
  for (const key of ['tlsCaFile', 'tlsCertFile', 'tlsKeyFile'] as const) {
    const path = auth[key];
    if (path !== undefined) readSecret(path, key);
  }
  const tlsWanted = tlsScheme || auth.tlsCaFile !== undefined || auth.tlsCertFile !== undefined;
  const tls = tlsWanted
    ? {
        ...(auth.tlsCaFile !== undefined ? { caFile: auth.tlsCaFile } : {}),
        ...(auth.tlsCertFile !== undefined ? { certFile: auth.tlsCertFile } : {}),
        ...(auth.tlsKeyFile !== undefined ? { keyFile: auth.tlsKeyFile } : {}),
      }
    : undefined;
  return { servers, authenticator, ...(tls ? { tls } : {}), secrets };
}

/** True when the server's certificate did not verify (a configuration error, not an outage). */
export function isNatsTlsError(err: unknown): boolean {
  const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const text = `${e?.code ?? ''} ${e?.message ?? ''} ${e?.cause?.code ?? ''} ${e?.cause?.message ?? ''}`;
  return /certificate|CERT_|Hostname\/IP does not match|ERR_TLS|SSL routines/i.test(text);
}

/** True when the server refused the credentials (retrying with the same ones cannot help). */
export function isNatsAuthError(err: unknown): boolean {
  const text = `${(err as Error)?.name ?? ''} ${(err as Error)?.message ?? ''} ${String((err as { cause?: unknown })?.cause ?? '')}`;
  return /authori[sz]ation|authentication|user authentication|permissions violation for connect/i.test(text);
}
