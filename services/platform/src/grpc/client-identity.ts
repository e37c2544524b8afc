/**
 * Which mutual-TLS clients may call a service: an allow-list of certificate subject alternative names
 * (`--tls-allowed-clients`), DNS names and URIs such as SPIFFE ids. The CA decides who may connect; this
 * list decides which of the CA's certificates may call. A certificate is allowed when any of its DNS or
 * URI SANs is on the list (DNS names compare case-insensitively, URIs exactly; no wildcards).
 */
import { invalidArgument } from '../errors.js';

export interface ClientAllowList {
  dns: ReadonlySet<string>;
  uris: ReadonlySet<string>;
}

export interface SubjectAltName {
  /** As Node names it: `DNS`, `URI`, `IP Address`, `email`, ... */
  type: string;
  value: string;
}

/**
 * The allow-list in `raw`: comma-separated entries, each `dns:<name>`, `uri:<uri>`, or bare (a URI when it
 * holds `://`, otherwise a DNS name).
 */
export function parseAllowedClients(raw: string, field = '--tls-allowed-clients'): ClientAllowList {
  const dns = new Set<string>();
  const uris = new Set<string>();
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    if (/\s/.test(entry))
      throw invalidArgument(field, `"${entry}" has white space`, 'separate the names with commas');
    const lower = entry.toLowerCase();
    if (lower.startsWith('uri:')) uris.add(entry.slice(4));
    else if (lower.startsWith('dns:')) dns.add(lower.slice(4));
    else if (entry.includes('://')) uris.add(entry);
    else dns.add(lower);
  }
  if (dns.size + uris.size === 0)
    throw invalidArgument(
      field,
      'names no client',
      'list the SANs of the client certificates, e.g. dns:trainer-client,uri:spiffe://cluster.local/ns/rlhf/sa/cli',
    );
  for (const d of dns)
    if (d === '')
      throw invalidArgument(field, 'has an empty dns: entry', 'write dns:<name>, e.g. dns:trainer-client');
  for (const u of uris)
    if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(u))
      throw invalidArgument(
        field,
        `"${u}" is not a URI`,
        'write uri:<scheme>:<rest>, e.g. uri:spiffe://td/x',
      );
  return { dns, uris };
}

/**
 * The entries of Node's `subjectaltname` string (`DNS:a, URI:spiffe://x, IP Address:127.0.0.1`), whose
 * values Node quotes as JSON strings when they hold a comma, a quote or a control character.
 */
export function parseSubjectAltNames(text: string | undefined): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        value = text.slice(j + 1, k);
      }
      j = k + 1;
      const comma = text.indexOf(',', j);
      i = comma < 0 ? text.length : comma + 1;
    } else {
      const comma = text.indexOf(', ', j);
      value = text.slice(j, comma < 0 ? text.length : comma);
      i = comma < 0 ? text.length : comma + 2;
    }
    out.push({ type, value });
  }
  return out;
}

/** Whether a certificate with these SANs is on the list. */
export function clientAllowed(list: ClientAllowList, sans: readonly SubjectAltName[]): boolean {
  return sans.some(
    (s) =>
      (s.type === 'DNS' && list.dns.has(s.value.toLowerCase())) ||
      (s.type === 'URI' && list.uris.has(s.value)),
  );
}

/** The DNS and URI SANs of a certificate, for an error text that tells a refused client who it is. */
export function describeSans(sans: readonly SubjectAltName[]): string {
  const named = sans.filter((s) => s.type === 'DNS' || s.type === 'URI');
  return named.length === 0 ? 'no DNS or URI names' : named.map((s) => `${s.type}:${s.value}`).join(', ');
}
