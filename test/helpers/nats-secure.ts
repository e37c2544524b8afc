/**
 * Fixtures for NATS servers that ask for credentials: a throwaway CA with a server and a client certificate
 * (openssl), NKey user pairs, and nats-server config files. Everything is written under a directory the test
 * owns and removes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';

export interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`. */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=rlhf-test-ca'],
    dir,
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'],
    ['client', 'subjectAltName=DNS:rlhf-worker\nextendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(join(dir, `${name}.ext`), ext);
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    );
  }
  return {
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

/** A fresh NKey user: its public key (for the server) and its seed (for the client). */
export function makeNkeyUser(): { publicKey: string; seed: string } {
  const kp = nkeys.createUser();
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
}

/** Writes a nats-server config file and returns its path. */
export async function writeServerConfig(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, `${name}.conf`);
  await writeFile(path, text);
  return path;
}

const b64url = (x: Uint8Array | string): string => Buffer.from(x).toString('base64url');

/** A NATS JWT (ed25519-nkey) with `claims`, signed by `signer`. */
function natsJwt(
  signer: ReturnType<typeof nkeys.createOperator>,
  sub: string,
  name: string,
  nats: object,
): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const iss = signer.getPublicKey();
  const claims = {
    jti: randomBytes(26).toString('hex').toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss,
    name,
    sub,
    nats,
  };
  const body = b64url(JSON.stringify(claims));
  const sig = signer.sign(new TextEncoder().encode(`${header}.${body}`));
  return `${header}.${body}.${b64url(sig)}`;
}

/**
 * Decentralised auth the way `nsc` sets it up, made offline: an operator, an account and a user, the server
 * config that trusts the operator (memory resolver with the account preloaded), and the user's creds file.
 */
export async function makeOperatorSetup(
  dir: string,
): Promise<{ serverConfig: string; credsFile: string; seed: string }> {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = natsJwt(operator, operator.getPublicKey(), 'rlhf-test-operator', {
    type: 'operator',
    version: 2,
  });
  const limits = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
  };
  const accountJwt = natsJwt(operator, account.getPublicKey(), 'rlhf-test-account', {
    type: 'account',
    version: 2,
    limits,
    default_permissions: { pub: {}, sub: {} },
  });
  const userJwt = natsJwt(account, user.getPublicKey(), 'rlhf-test-user', {
    type: 'user',
    version: 2,
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  const seed = new TextDecoder().decode(user.getSeed());
  const credsFile = join(dir, 'user.creds');
  await writeFile(
    credsFile,
    `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
      '************************* IMPORTANT *************************\n' +
      'NKEY Seed printed below can be used to sign and prove identity.\n\n' +
      `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  );
  const serverConfig = await writeServerConfig(
    dir,
    'operator',
    `operator: ${operatorJwt}\nresolver: MEMORY\nresolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt}\n}\n`,
  );
  return { serverConfig, credsFile, seed };
}
