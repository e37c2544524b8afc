/** The mutual-TLS allow-list: its flag syntax, Node's subjectaltname text, and which certificates pass. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { clientAllowed, describeSans, parseAllowedClients, parseSubjectAltNames } from './client-identity.js';

test('the allow-list takes dns: and uri: entries, or bare names and URIs', () => {
  const list = parseAllowedClients(
    ' dns:Trainer-Client, uri:spiffe://td/ns/a/sa/b ,cli.example,spiffe://td/x,',
  );
  assert.deepEqual([...list.dns].sort(), ['cli.example', 'trainer-client']);
  assert.deepEqual([...list.uris].sort(), ['spiffe://td/ns/a/sa/b', 'spiffe://td/x']);
  for (const [raw, message] of [
    ['', /names no client/],
    [' , ', /names no client/],
    ['dns:', /empty dns/],
    ['uri:nonsense', /is not a URI/],
    ['a b', /white space/],
  ] as const) {
    assert.throws(
      () => parseAllowedClients(raw),
      (e: unknown) =>
        e instanceof RlhfError && e.field === '--tls-allowed-clients' && message.test(e.message),
      raw,
    );
  }
});

test("Node's subjectaltname text is split into typed names, quoted values included", () => {
  assert.deepEqual(parseSubjectAltNames('DNS:allowed-client, URI:spiffe://td/sa/x, IP Address:127.0.0.1'), [
    { type: 'DNS', value: 'allowed-client' },
    { type: 'URI', value: 'spiffe://td/sa/x' },
    { type: 'IP Address', value: '127.0.0.1' },
  ]);
  // Node quotes a value that holds a comma, so one SAN cannot pose as two.
  assert.deepEqual(parseSubjectAltNames('DNS:"evil, DNS:allowed-client", DNS:other'), [
    { type: 'DNS', value: 'evil, DNS:allowed-client' },
    { type: 'DNS', value: 'other' },
  ]);
  assert.deepEqual(parseSubjectAltNames(undefined), []);
  assert.deepEqual(parseSubjectAltNames(''), []);
});

test('a certificate passes when one DNS (any case) or URI (exactly) SAN is listed', () => {
  const list = parseAllowedClients('dns:allowed-client,uri:spiffe://td/ns/rlhf/sa/cli');
  const allowed = (text: string) => clientAllowed(list, parseSubjectAltNames(text));
  assert.equal(allowed('DNS:other, DNS:Allowed-Client'), true);
  assert.equal(allowed('URI:spiffe://td/ns/rlhf/sa/cli'), true);
  assert.equal(allowed('URI:spiffe://td/ns/rlhf/sa/CLI'), false, 'URIs compare exactly');
  assert.equal(allowed('URI:spiffe://td/ns/rlhf/sa/cli/extra'), false);
  assert.equal(allowed('DNS:allowed-client.evil'), false);
  assert.equal(allowed('DNS:"evil, DNS:allowed-client"'), false, 'a quoted value is one name');
  assert.equal(allowed('IP Address:127.0.0.1'), false, 'IP SANs are not identities here');
  assert.equal(allowed('email:allowed-client'), false);
  assert.equal(allowed(''), false);
  assert.equal(describeSans(parseSubjectAltNames('DNS:a, IP Address:1.2.3.4, URI:u:x')), 'DNS:a, URI:u:x');
  assert.equal(describeSans([]), 'no DNS or URI names');
});
