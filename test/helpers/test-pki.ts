/**
 * Throwaway certificates for TLS tests, made by the real `openssl` into a directory: a CA, a server
 * certificate for 127.0.0.1 and localhost, client certificates from the same CA with given SANs, and a
 * client certificate from another CA. EC P-256 keys, valid for two days. The Kubernetes control plane of the
 * real-API-server tests signs its certificates with the same makeCa and signLeaf.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA (`<name>.pem`, `<name>.key`), marked a CA for verifiers that check (Kubernetes does). */
export function makeCa(dir: string, name: string, subject = `/CN=${name}`): KeyPair {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  openssl(
    ['req', '-x509', ...ecKey, '-keyout', pair.key, '-out', pair.cert, '-days', '2', '-subj', subject].concat(
      ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ),
    dir,
  );
  return pair;
}

/** A certificate for `subject` signed by `ca`, with the X.509 extensions in `ext` (openssl extfile lines). */
export function signLeaf(dir: string, name: string, ca: KeyPair, subject: string, ext: string): KeyPair {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`);
  openssl(['req', ...ecKey, '-keyout', pair.key, '-out', csr, '-subj', subject], dir);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'].concat([
      '-out',
      pair.cert,
      '-days',
      '2',
      '-extfile',
      extFile,
    ]),
    dir,
  );
  return pair;
}

function makeLeaf(dir: string, name: string, ca: KeyPair, san: string, usage: string): KeyPair {
  return signLeaf(dir, name, ca, `/CN=${name}`, `subjectAltName=${san}\nextendedKeyUsage=${usage}`);
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
