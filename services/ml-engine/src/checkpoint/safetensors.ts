/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
 * JSON mapping each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into the data
 * that follows, plus an optional `__metadata__` string map), then the tensor bytes, packed with no gaps.
 * We read F32, F16 and BF16 (widened to F32) and write any of the three. Every structural rule the reference
 * implementation checks is checked here, so a truncated or hand-edited file fails loudly, by name.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { EngineError, invalidInput } from '../engine-error.js';
import { decodeBf16, decodeF16, decodeF32, encodeAs, LITTLE_ENDIAN } from './half-float.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const BYTES_PER_VALUE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Dtypes the format defines that we recognise but do not read (a clearer error than "unknown"). */
const OTHER_DTYPES = new Set([
  'F64',
  'F8_E4M3',
  'F8_E5M2',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
]);

/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
const MAX_HEADER_BYTES = 100_000_000;

export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

/** A tensor read only when it is written: a shape, its value count, and where its F32 values come from. */
export interface LazyF32Tensor {
  shape: number[];
  length: number;
  load(): Promise<Float32Array>;
}

/** What writeSafetensors takes: values in memory, or values loaded one tensor at a time as they are written. */
export type F32Source = F32Tensor | LazyF32Tensor;

const countOf = (t: F32Source) => ('data' in t ? t.data.length : t.length);
const valuesOf = async (t: F32Source) => ('data' in t ? t.data : await t.load());

export interface LoadedTensor extends F32Tensor {
  /** The dtype in the file, before widening to F32. */
  dtype: SafetensorsDtype;
}

export interface SafetensorsContents {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

function corrupt(source: string, what: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', `corrupt safetensors file ${source}: ${what}`, {
    field: source,
    fix: 'write the file again; it may be truncated or not a safetensors file',
  });
}

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** The header's length from the file's first 8 bytes, checked against the file's `total` length. */
function headerLengthOf(first8: Uint8Array, total: number, source: string): number {
  if (total < 8) throw corrupt(source, `${total} bytes is too short for the 8-byte header length`);
  const headerLength = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, total - 8))) {
    throw corrupt(source, `header length ${headerLength} exceeds the ${total - 8} bytes after it`);
  }
  return Number(headerLength);
}

/** `bytes` holds at least the 8-byte length and the header; `total` is the whole file's length. */
function parseHeader(
  bytes: Uint8Array,
  total: number,
  source: string,
): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  const dataStart = 8 + headerLengthOf(bytes, total, source);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (cause) {
    throw corrupt(source, `header is not UTF-8 JSON (${(cause as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw corrupt(source, 'header is not a JSON object');
  }
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Object.values(raw).some((v) => typeof v !== 'string')) {
        throw corrupt(source, '__metadata__ must map strings to strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (raw ?? {}) as Record<string, unknown>;
    if (typeof dtype !== 'string') throw corrupt(source, `tensor ${name} has no dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw corrupt(
        source,
        `tensor ${name} has shape ${JSON.stringify(shape)}, expected non-negative integers`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw corrupt(
        source,
        `tensor ${name} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end]`,
      );
    }
    entries.push({ name, dtype, shape, begin: offsets[0], end: offsets[1] });
  }
  return { entries, metadata, dataStart };
}

/** Size and packing rules: each tensor's bytes match its shape, and tensors tile the data exactly. */
function checkLayout(entries: HeaderEntry[], dataLength: number, source: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const e of sorted) {
    if (e.begin !== expectedBegin) {
      throw corrupt(
        source,
        `tensor ${e.name} starts at byte ${e.begin}, expected ${expectedBegin} (gap or overlap)`,
      );
    }
    const size = BYTES_PER_VALUE[e.dtype as SafetensorsDtype];
    if (size !== undefined) {
      const count = e.shape.reduce((a, b) => a * b, 1);
      if (e.end - e.begin !== count * size) {
        throw corrupt(
          source,
          `tensor ${e.name} has ${e.end - e.begin} bytes, shape [${e.shape}] ${e.dtype} needs ${count * size}`,
        );
      }
    } else if (e.end < e.begin) {
      throw corrupt(source, `tensor ${e.name} ends before it begins`);
    }
    expectedBegin = e.end;
  }
  if (expectedBegin !== dataLength) {
    throw corrupt(
      source,
      `tensors cover ${expectedBegin} bytes but the file holds ${dataLength} after the header`,
    );
  }
}

/** Parses safetensors bytes; `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const { entries, metadata, dataStart } = parseHeader(bytes, bytes.length, source);
  const data = bytes.subarray(dataStart);
  checkLayout(entries, data.length, source);
  const tensors = new Map<string, LoadedTensor>();
  for (const e of entries) {
    const dtype = readableDtype(e, source);
    const values = new Float32Array((e.end - e.begin) / BYTES_PER_VALUE[dtype]);
    decodeInto(dtype, data.subarray(e.begin, e.end), values);
    tensors.set(e.name, { dtype, shape: e.shape, data: values });
  }
  return { tensors, metadata };
}

function decodeInto(dtype: SafetensorsDtype, raw: Uint8Array, values: Float32Array): void {
  if (dtype === 'F32') decodeF32(raw, values);
  else if (dtype === 'F16') decodeF16(raw, values);
  else decodeBf16(raw, values);
}

function readableDtype(e: HeaderEntry, source: string): SafetensorsDtype {
  if (!(e.dtype in BYTES_PER_VALUE)) {
    if (OTHER_DTYPES.has(e.dtype)) {
      throw invalidInput(
        `${source}: tensor ${e.name} has dtype ${e.dtype}; only F32, F16 and BF16 tensors can be read`,
        `${source}:${e.name}`,
        'convert the checkpoint to a float dtype',
      );
    }
    throw corrupt(source, `tensor ${e.name} has unknown dtype ${JSON.stringify(e.dtype)}`);
  }
  return e.dtype as SafetensorsDtype;
}

/** Reads `into.byteLength` bytes at `position` of `file`; a short read means the file changed under us. */
async function readFully(
  file: FileHandle,
  into: Uint8Array,
  position: number,
  source: string,
): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const chunk = Math.min(into.byteLength - done, 2 ** 30);
    const { bytesRead } = await file.read(into, done, chunk, position + done);
    if (bytesRead === 0) throw corrupt(source, `the file ends at byte ${position + done}`);
    done += bytesRead;
  }
}

/**
 * Reads a safetensors file by offset: the header, then each tensor straight into its Float32Array (F16 and
 * BF16 through one tensor-sized buffer), so a 3 GB checkpoint is in memory once, as its F32 values.
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new EngineError(
      missing ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      `cannot read ${path}: ${(cause as Error).message}`,
      {
        field: path,
        cause,
      },
    );
  }
  try {
    const total = (await file.stat()).size;
    const first8 = new Uint8Array(Math.min(8, total));
    await readFully(file, first8, 0, path);
    const head = new Uint8Array(8 + headerLengthOf(first8, total, path));
    await readFully(file, head, 0, path);
    const { entries, metadata, dataStart } = parseHeader(head, total, path);
    checkLayout(entries, total - dataStart, path);
    const tensors = new Map<string, LoadedTensor>();
    for (const e of entries) readableDtype(e, path);
    for (const e of entries) {
      const dtype = readableDtype(e, path);
      const values = new Float32Array((e.end - e.begin) / BYTES_PER_VALUE[dtype]);
      if (dtype === 'F32' && LITTLE_ENDIAN) {
        await readFully(file, new Uint8Array(values.buffer), dataStart + e.begin, path);
      } else {
        const raw = new Uint8Array(e.end - e.begin);
        await readFully(file, raw, dataStart + e.begin, path);
        decodeInto(dtype, raw, values);
      }
      tensors.set(e.name, { dtype, shape: e.shape, data: values });
    }
    return { tensors, metadata };
  } finally {
    await file.close();
  }
}

/**
 * Header bytes for tensors stored as `dtype`, laid out in name order, padded with spaces to 8 bytes as the
 * reference writer does.
 */
function buildHeader(
  tensors: Map<string, F32Source>,
  metadata: Record<string, string> | undefined,
  dtype: SafetensorsDtype,
): {
  header: Uint8Array;
  order: string[];
} {
  const order = [...tensors.keys()].sort();
  const json: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw invalidInput(`metadata ${k} must be a string, got ${typeof v}`, `metadata.${k}`);
    }
    json.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of order) {
    if (name === '__metadata__') throw invalidInput('a tensor cannot be named __metadata__', name);
    const tensor = tensors.get(name)!;
    const shape = tensor.shape;
    const count = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== countOf(tensor)) {
      throw invalidInput(
        `tensor ${name} has ${countOf(tensor)} values but shape [${shape}] holds ${count}`,
        name,
        'pass the shape the values were laid out in (row-major)',
      );
    }
    const bytes = count * BYTES_PER_VALUE[dtype];
    json[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(json);
  const padded = text + ' '.repeat((8 - ((Buffer.byteLength(text) + 8) % 8)) % 8);
  const body = new TextEncoder().encode(padded);
  const header = new Uint8Array(8 + body.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(body.length), true);
  header.set(body, 8);
  return { header, order };
}

/** The file's bytes in memory; `writeSafetensors` streams the same bytes to disk. */
export function serializeSafetensors(
  tensors: Map<string, F32Tensor>,
  metadata?: Record<string, string>,
  dtype: SafetensorsDtype = 'F32',
): Uint8Array {
  const { header, order } = buildHeader(tensors, metadata, dtype);
  const size = BYTES_PER_VALUE[dtype] / 4;
  const total = order.reduce((n, name) => n + tensors.get(name)!.data.byteLength * size, header.length);
  const out = new Uint8Array(total);
  out.set(header, 0);
  let at = header.length;
  for (const name of order) {
    const bytes = encodeAs(dtype, tensors.get(name)!.data);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/**
 * Writes tensors (F32 values, stored as `dtype`: F16 and BF16 rounded to nearest, ties to even) to `path`
 * through a temporary sibling and a rename, so the path holds either the old file or the complete new one,
 * never a prefix. One tensor is converted at a time.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, F32Source>,
  metadata?: Record<string, string>,
  dtype: SafetensorsDtype = 'F32',
): Promise<void> {
  const { header, order } = buildHeader(tensors, metadata, dtype);
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const file = await open(temp, 'wx');
  try {
    await file.write(header);
    for (const name of order) {
      const bytes = encodeAs(dtype, await valuesOf(tensors.get(name)!));
      for (let at = 0; at < bytes.byteLength; ) {
        const { bytesWritten } = await file.write(bytes, at, Math.min(bytes.byteLength - at, 2 ** 30));
        at += bytesWritten;
      }
    }
    await file.sync();
    await file.close();
    await rename(temp, path);
  } catch (error) {
    await file.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
}
