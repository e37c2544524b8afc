/**
 * Fixtures for NATS servers that ask for credentials: a throwaway CA with a server and a client certificate
 * (openssl), NKey user pairs, and nats-server config files. Everything is written under a directory the test
 * owns and removes.
 */
import { execFileSync } from 'node:child_process';
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
