/**
 * Invalid UTF-8 in a request's text fields, found in the raw bytes. The generated decoder (ts-proto over
 * @bufbuild/protobuf) decodes strings leniently, turning bad bytes into U+FFFD, so after decoding a bad
 * prompt cannot be told from one that really holds U+FFFD. The service definition is therefore wrapped:
 * its request deserializer decodes as before and also walks the wire bytes of the string fields, decoding
 * each strictly, and records the paths of the bad ones (`prompts[2]`, `sampling.stop[0]`) against the
 * decoded request for the handler to answer INVALID_ARGUMENT naming them.
 */
import type * as grpc from '@grpc/grpc-js';

/** Field number -> name, and for message fields their own schema; repeated fields are indexed. */
export interface WireSchema {
  [field: number]: { name: string; repeated?: boolean; message?: WireSchema };
}

const modelRef: WireSchema = { 1: { name: 'uri' }, 2: { name: 'revision' }, 3: { name: 'digest' } };

/** GenerateRequest and GenerateStreamRequest share their field numbers. */
export const generateRequestSchema: WireSchema = {
  1: { name: 'model', message: modelRef },
  2: { name: 'prompts', repeated: true },
  5: { name: 'sampling', message: { 6: { name: 'stop', repeated: true } } },
};

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Paths of the string fields in `bytes` (a message of `schema`) that are not valid UTF-8. */
export function invalidUtf8Fields(bytes: Uint8Array, schema: WireSchema, prefix = ''): string[] {
  const bad: string[] = [];
  const counts = new Map<number, number>();
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
      const fieldNo = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (wireType === 0) varint();
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint();
        const body = bytes.subarray(pos, pos + length);
        pos += length;
        const spec = schema[fieldNo];
        if (!spec) continue;
        const index = counts.get(fieldNo) ?? 0;
        counts.set(fieldNo, index + 1);
        const path = `${prefix}${spec.name}${spec.repeated ? `[${index}]` : ''}`;
        if (spec.message) bad.push(...invalidUtf8Fields(body, spec.message, `${path}.`));
        else {
          try {
            strict.decode(body);
          } catch {
            bad.push(path);
          }
        }
      } else break; // groups: not in these messages; the decoder has judged the bytes already
    }
  } catch {
    // Malformed bytes: the generated decoder would have thrown first; nothing more to report here.
  }
  return bad;
}

const found = new WeakMap<object, string[]>();

/** The paths recorded for a request decoded through withUtf8Checks (empty when all were valid). */
export function invalidUtf8Of(request: object): string[] {
  return found.get(request) ?? [];
}

/** The same service definition with every request deserializer also checking UTF-8 by `schema`. */
export function withUtf8Checks(
  definition: grpc.ServiceDefinition,
  schema: WireSchema,
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const m = method as grpc.MethodDefinition<unknown, unknown>;
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        const request = m.requestDeserialize(bytes);
        if (typeof request === 'object' && request !== null) {
          const bad = invalidUtf8Fields(bytes, schema);
          if (bad.length > 0) found.set(request, bad);
        }
        return request;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
