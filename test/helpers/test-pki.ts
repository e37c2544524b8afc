/**
 * Throwaway certificates for TLS tests, made by the real `openssl` into a directory: a CA, a server
 * certificate for 127.0.0.1 and localhost, client certificates from the same CA with given SANs, and a
 * client certificate from another CA. EC P-256 keys, valid for a day.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): KeyPair {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pair.key,
      '-out',
      pair.cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
    ],
    dir,
  );
  return pair;
}

function makeLeaf(dir: string, name: string, ca: KeyPair, san: string, usage: string): KeyPair {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pair.key,
      '-out',
      csr,
      '-subj',
      `/CN=${name}`,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      pair.cert,
      '-days',
      '1',
      '-extfile',
      ext,
    ],
    dir,
  );
  return pair;
}

export interface TestPki {
  ca: KeyPair;
  server: KeyPair;
  /** Signed by `ca`, SANs DNS:allowed-client and URI:spiffe://rlhf.test/ns/rlhf/sa/trainer-client. */
  allowed: KeyPair;
  /** Signed by `ca`, SAN DNS:other-client only. */
  otherSan: KeyPair;
  /** Signed by another CA, SAN DNS:allowed-client (the right name from the wrong CA). */
  otherCa: KeyPair;
}

export const allowedClientUri = 'spiffe://rlhf.test/ns/rlhf/sa/trainer-client';

export function makeTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const ca = makeCa(dir, 'ca');
  const rogue = makeCa(dir, 'rogue-ca');
  return {
    ca,
    server: makeLeaf(dir, 'server', ca, 'DNS:localhost,IP:127.0.0.1', 'serverAuth'),
    allowed: makeLeaf(dir, 'allowed', ca, `DNS:allowed-client,URI:${allowedClientUri}`, 'clientAuth'),
    otherSan: makeLeaf(dir, 'other-san', ca, 'DNS:other-client', 'clientAuth'),
    otherCa: makeLeaf(dir, 'other-ca', rogue, 'DNS:allowed-client', 'clientAuth'),
  };
}
