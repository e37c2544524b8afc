import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type F32Tensor,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from './safetensors.js';

/** A file built by hand from the format description: header JSON, then the raw bytes. */
function handMade(header: object, data: number[], padTo8 = true): Uint8Array {
  let json = JSON.stringify(header);
  if (padTo8) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'st-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the byte layout of the reference implementation', () => {
    // The case of the reference implementation's test_simple.py (one 2x2 tensor named "test"), as F32,
    // with the JSON padded by spaces to a multiple of 8 bytes as its current writer does.
    const bytes = serializeSafetensors(
      new Map([['test', { shape: [2, 2], data: new Float32Array([0, 0, 0, 1]) }]]),
    );
    const header = '{"test":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}    ';
    const headerLength = [64, 0, 0, 0, 0, 0, 0, 0]; // u64 little-endian
    const values = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f]; // 0, 0, 0, 1 as F32
    const expected = new Uint8Array([...headerLength, ...new TextEncoder().encode(header), ...values]);
    assert.deepEqual(bytes, expected);
  });

  it('round-trips F32 tensors and metadata through a file', async () => {
    const tensors = new Map<string, F32Tensor>([
      ['model.norm.weight', { shape: [3], data: new Float32Array([1, -2.5, 3.25]) }],
      ['model.embed_tokens.weight', { shape: [2, 2], data: new Float32Array([0.1, 0.2, 0.3, 0.4]) }],
      ['scalar', { shape: [], data: new Float32Array([7]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    const bytes = await readFile(path);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
    const read = await readSafetensors(path);
    assert.deepEqual(read.metadata, { format: 'pt' });
    for (const [name, t] of tensors) {
      assert.deepEqual(read.tensors.get(name), { dtype: 'F32', shape: t.shape, data: t.data });
    }
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  it('widens F16 and BF16 exactly', () => {
    const f16 = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x8000];
    const bf16 = [0x3f80, 0xc000, 0x4049, 0x0000];
    const le = (words: number[]) => words.flatMap((w) => [w & 0xff, w >> 8]);
    const file = handMade(
      {
        a: { dtype: 'F16', shape: [7], data_offsets: [0, 14] },
        b: { dtype: 'BF16', shape: [2, 2], data_offsets: [14, 22] },
      },
      [...le(f16), ...le(bf16)],
    );
    const { tensors } = parseSafetensors(file, 'half.safetensors');
    assert.deepEqual(
      [...tensors.get('a')!.data],
      [1, -2, 0.5, 65504, 2 ** -24, Number.POSITIVE_INFINITY, -0],
    );
    assert.equal(tensors.get('a')!.dtype, 'F16');
    assert.deepEqual([...tensors.get('b')!.data], [1, -2, 3.140625, 0]);
    assert.deepEqual(tensors.get('b')!.shape, [2, 2]);
  });

  it('reads files whose header is not padded (older writers)', () => {
    const file = handMade(
      { x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      [0, 0, 0x80, 0x3f],
      false,
    );
    assert.deepEqual([...parseSafetensors(file, 'x').tensors.get('x')!.data], [1]);
  });

  it('rejects corrupt files, naming the file and what is wrong', async () => {
    const good = serializeSafetensors(
      new Map([
        ['a', { shape: [2], data: new Float32Array([1, 2]) }],
        ['b', { shape: [1], data: new Float32Array([3]) }],
      ]),
    );
    const path = join(dir, 'bad.safetensors');
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, good.length - 1), /tensors cover 12 bytes but the file holds 11 after the header/],
      [good.subarray(0, 5), /5 bytes is too short/],
      [handMade({}, [], false).fill(0xff, 0, 8), /header length \d+ exceeds/],
      [
        handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0]),
        /tensor a has 4 bytes, shape \[2\] F32 needs 8/,
      ],
      [
        handMade(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
          },
          Array(12).fill(0),
        ),
        /tensor b starts at byte 8, expected 4 \(gap or overlap\)/,
      ],
      [
        handMade({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, [0]),
        /tensor a has unknown dtype "Q4"/,
      ],
      [
        handMade({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0]),
        /has shape \[-1\]/,
      ],
      [handMade({ a: { dtype: 'F32', shape: [1] } }, [0, 0, 0, 0]), /has data_offsets undefined/],
      [new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0x5b, 0x5d]), /header is not a JSON object/],
      [new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]), /header is not UTF-8 JSON/],
    ];
    for (const [bytes, message] of cases) {
      await writeFile(path, bytes);
      await assert.rejects(readSafetensors(path), (e: Error) => {
        assert.match(e.message, new RegExp(`^corrupt safetensors file ${path}: `));
        assert.match(e.message, message);
        return true;
      });
    }
  });

  it('explains dtypes it does not read', () => {
    const file = handMade({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, Array(8).fill(0));
    assert.throws(
      () => parseSafetensors(file, 'm.safetensors'),
      /tensor ids has dtype I64; only F32, F16 and BF16/,
    );
  });

  it('refuses to write a tensor whose shape does not match its values', async () => {
    const bad = new Map([['w', { shape: [2, 3], data: new Float32Array(5) }]]);
    assert.throws(() => serializeSafetensors(bad), /tensor w has 5 values but shape \[2,3\] holds 6/);
    await assert.rejects(writeSafetensors(join(dir, 'never.safetensors'), bad), /tensor w has 5 values/);
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith('never')));
  });

  it('reports a missing file as NOT_FOUND', async () => {
    await assert.rejects(readSafetensors(join(dir, 'absent.safetensors')), { code: 'NOT_FOUND' });
  });
});
