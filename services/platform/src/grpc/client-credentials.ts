/**
 * The client side of call authentication: channel credentials (plaintext, TLS, or mutual TLS with a client
 * certificate) and a client interceptor that adds `authorization: Bearer <token>` to every call. The token
 * goes through an interceptor rather than call credentials because grpc-js refuses call credentials on a
 * plaintext channel, and a token on a loopback or in-cluster plaintext channel is a supported setup.
 */
import * as grpc from '@grpc/grpc-js';
import { RlhfError } from '../errors.js';
import {
  authMetadataKey,
  authTokenEnv,
  authTokenFileEnv,
  parseToken,
  readTokenFile,
} from './bearer-token.js';
import { readPem } from './pem-file.js';

/** What a client may be given on its command line (every field optional). */
export interface ClientAuthFlags {
  /** --auth-token-file */
  authTokenFile?: string | undefined;
  /** --tls-ca: the CA that signed the server's certificate (TLS on when any TLS flag is set). */
  tlsCa?: string | undefined;
  /** --tls-cert and --tls-key: the client certificate for mutual TLS. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** --tls-server-name: the name to check the server's certificate against, when the address is not it. */
  tlsServerName?: string | undefined;
}

export interface ClientChannel {
  credentials: grpc.ChannelCredentials;
  options: grpc.ClientOptions;
}

/** The token a client sends: --auth-token-file, else RLHF_AUTH_TOKEN_FILE, else RLHF_AUTH_TOKEN; or none. */
export function clientToken(
  flags: ClientAuthFlags,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (flags.authTokenFile !== undefined) return readTokenFile(flags.authTokenFile, '--auth-token-file');
  const file = env[authTokenFileEnv];
  if (file !== undefined && file !== '') return readTokenFile(file, authTokenFileEnv);
  const value = env[authTokenEnv];
  if (value !== undefined && value !== '') return parseToken(value, authTokenEnv, authTokenEnv);
  return undefined;
}

/** A client interceptor that sends `token` as `authorization: Bearer <token>` on every call. */
export function bearerInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set(authMetadataKey, value);
        next(metadata, listener);
      },
    });
}

/** Credentials and client options (token interceptor, server name) for `flags`, reading the files now. */
export function clientChannel(flags: ClientAuthFlags, env: NodeJS.ProcessEnv = process.env): ClientChannel {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new RlhfError(
      'INVALID_ARGUMENT',
      'a client certificate needs its key and the key its certificate',
      {
        field: flags.tlsCert === undefined ? '--tls-cert' : '--tls-key',
        fix: 'pass --tls-cert and --tls-key together',
      },
    );
  const tls = flags.tlsCa !== undefined || flags.tlsCert !== undefined || flags.tlsServerName !== undefined;
  const credentials = tls
    ? grpc.credentials.createSsl(
        flags.tlsCa === undefined ? null : readPem(flags.tlsCa, '--tls-ca'),
        flags.tlsKey === undefined ? null : readPem(flags.tlsKey, '--tls-key'),
        flags.tlsCert === undefined ? null : readPem(flags.tlsCert, '--tls-cert'),
      )
    : grpc.credentials.createInsecure();
  const token = clientToken(flags, env);
  const options: grpc.ClientOptions = {
    ...(flags.tlsServerName !== undefined ? { 'grpc.ssl_target_name_override': flags.tlsServerName } : {}),
    ...(token !== undefined ? { interceptors: [bearerInterceptor(token)] } : {}),
  };
  return { credentials, options };
}
