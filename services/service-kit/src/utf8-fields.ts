/**
 * Invalid UTF-8 in a request's string fields, found in the raw bytes. The generated decoders (ts-proto over
 * @bufbuild/protobuf) decode strings with a non-fatal TextDecoder, so bad bytes arrive as U+FFFD and cannot
 * be told from text that really holds U+FFFD (which generated text may). A service definition wrapped by
 * `withUtf8Checks` decodes as before and also walks the wire bytes of the string fields its schema names,
 * decoding each strictly; the paths of the bad ones (`items[0].responses[1]`, `labels[rlhf.dev/run]`) are
 * recorded against the decoded request, and the `unary` / `serverStream` wrappers answer INVALID_ARGUMENT
 * naming the first before the handler runs.
 */
import type * as grpc from '@grpc/grpc-js';
import { invalidArgument } from '@rlhf/platform';

/** Field number -> how to read it: a string (default), a nested message, or a map<string, string>. */
export interface WireSchema {
  [field: number]: { name: string; repeated?: boolean; message?: WireSchema; map?: boolean };
}

export const modelRefSchema: WireSchema = {
  1: { name: 'uri' },
  2: { name: 'revision' },
  3: { name: 'digest' },
};
export const datasetRefSchema: WireSchema = { 1: { name: 'uri' } };
/** Conversation (common.proto): messages = 1, each a ChatMessage with role = 1 and content = 2. */
export const conversationSchema: WireSchema = {
  1: { name: 'messages', repeated: true, message: { 1: { name: 'role' }, 2: { name: 'content' } } },
};
/** Get*, Watch* and Cancel* training-job requests: job_id = 1, reason = 2 (cancel only). */
export const jobRequestSchema: WireSchema = { 1: { name: 'job_id' }, 2: { name: 'reason' } };

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strict.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Key (1) and value (2) of a map<string, string> entry, undefined where absent or not valid UTF-8. */
function mapEntry(bytes: Uint8Array): { key: string | undefined; valueOk: boolean } {
  let key: string | undefined = '';
  let valueOk = true;
  walk(bytes, (field, body) => {
    if (field === 1) key = isUtf8(body) ? strict.decode(body) : undefined;
    else if (field === 2) valueOk = isUtf8(body);
  });
  return { key, valueOk };
}

/** Calls `onBytes` for every length-delimited field; stops quietly at malformed bytes. */
function walk(bytes: Uint8Array, onBytes: (field: number, body: Uint8Array) => void): void {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) throw new RangeError('truncated varint');
      const b = bytes[pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new RangeError('varint too long');
  };
  try {
    while (pos < bytes.length) {
      const tag = varint();
      const wireType = tag % 8;
      if (wireType === 0) varint();
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint();
        onBytes(Math.floor(tag / 8), bytes.subarray(pos, pos + length));
        pos += length;
      } else break; // groups: not in these messages
    }
  } catch {
    // Malformed bytes: the generated decoder has judged them already.
  }
}

/** Paths of the string fields in `bytes` (a message of `schema`) that are not valid UTF-8. */
export function invalidUtf8Fields(bytes: Uint8Array, schema: WireSchema, prefix = ''): string[] {
  const bad: string[] = [];
  const counts = new Map<number, number>();
  walk(bytes, (field, body) => {
    const spec = schema[field];
    if (!spec) return;
    const index = counts.get(field) ?? 0;
    counts.set(field, index + 1);
    const path = `${prefix}${spec.name}${spec.repeated ? `[${index}]` : ''}`;
    if (spec.map) {
      const { key, valueOk } = mapEntry(body);
      if (key === undefined) bad.push(path);
      else if (!valueOk) bad.push(`${path}[${key}]`);
    } else if (spec.message) bad.push(...invalidUtf8Fields(body, spec.message, `${path}.`));
    else if (!isUtf8(body)) bad.push(path);
  });
  return bad;
}

const found = new WeakMap<object, string[]>();

/** The paths recorded for a request decoded through withUtf8Checks (empty when all were valid). */
export function invalidUtf8Of(request: unknown): string[] {
  return typeof request === 'object' && request !== null ? (found.get(request) ?? []) : [];
}

/** INVALID_ARGUMENT naming the first string field of the request that was not valid UTF-8 on the wire. */
export function checkRequestUtf8(request: unknown): void {
  const [field] = invalidUtf8Of(request);
  if (field !== undefined) throw invalidArgument(field, 'is not valid UTF-8', 'send UTF-8 text');
}

/**
 * The same service definition with the request deserializer of each method in `schemas` (keyed by the
 * definition's method names, e.g. `score`) also checking the string fields' UTF-8.
 */
export function withUtf8Checks(
  definition: grpc.ServiceDefinition,
  schemas: Record<string, WireSchema>,
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const m = method as grpc.MethodDefinition<unknown, unknown>;
    const schema = schemas[name];
    out[name] = schema
      ? {
          ...m,
          requestDeserialize: (bytes: Buffer) => {
            const request = m.requestDeserialize(bytes);
            if (typeof request === 'object' && request !== null) {
              const bad = invalidUtf8Fields(bytes, schema);
              if (bad.length > 0) found.set(request, bad);
            }
            return request;
          },
        }
      : m;
  }
  return out as grpc.ServiceDefinition;
}
