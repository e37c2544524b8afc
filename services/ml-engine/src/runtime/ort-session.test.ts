import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { EngineError } from '../engine-error.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { defaultThreads, inferenceSessionOptions, OrtSession, ortSessionOptions } from './ort-session.js';

test('runs a model from bytes with float32, float64 and int64 feeds and returns typed outputs', async () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['n', 2]);
  const d = g.input('d', 'float64', [2]);
  const ids = g.input('ids', 'int64', ['n']);
  const table = g.initializer('table', [10, 20, 30], [3]);
  g.output(g.mul(x, 2), 'twice');
  g.output(g.add(d, 0.5), 'd.plus');
  g.output(g.gather(table, ids), 'picked');
  g.output(g.equal(ids, g.scalar(1, 'int64')), 'is.one');
  const session = await OrtSession.create(g.toBytes());
  assert.deepEqual([...session.inputNames].sort(), ['d', 'ids', 'x']);
  const out = await session.run({
    x: { data: Float32Array.from([1, 2, 3, 4]), dims: [2, 2] },
    d: { data: Float64Array.from([0.25, 1]), dims: [2] },
    ids: { data: BigInt64Array.from([2n, 1n]), dims: [2] },
  });
  assert.equal(out.twice?.dtype, 'float32');
  assert.deepEqual(out.twice?.dims, [2, 2]);
  assert.deepEqual(Array.from(out.twice?.data as Float32Array), [2, 4, 6, 8]);
  assert.ok(out['d.plus']?.data instanceof Float64Array);
  assert.deepEqual(Array.from(out['d.plus']?.data as Float64Array), [0.75, 1.5]);
  assert.deepEqual(Array.from(out.picked?.data as Float32Array), [30, 20]);
  assert.equal(out['is.one']?.dtype, 'bool');
  assert.deepEqual(Array.from(out['is.one']?.data as Uint8Array), [0, 1]);

  const some = await session.run(
    {
      x: { data: Float32Array.from([1, 1]), dims: [1, 2] },
      d: { data: Float64Array.from([0, 0]), dims: [2] },
      ids: { data: BigInt64Array.from([0n]), dims: [1] },
    },
    ['picked'],
  );
  assert.deepEqual(Object.keys(some), ['picked']);
  await session.dispose();
});

test('bad feeds are refused with the names involved', async () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2]);
  g.output(g.neg(x), 'y');
  const session = await OrtSession.create(g.build());
  await assert.rejects(session.run({}), /missing feeds: x/);
  await assert.rejects(
    session.run({ x: { data: new Float32Array(3), dims: [2] } }),
    /feed x: 3 values for dims \[2\]/,
  );
  await session.dispose();
});

test('a float64 ModelProto gets a level whose fusions have float64 kernels', async () => {
  const g = new GraphBuilder({ float: 'float64' });
  const x = g.input('x', 'float64', [2]);
  g.output(g.mul(x, g.sigmoid(x)), 'silu');
  // At level 'all' ORT 1.30 fuses this into QuickGelu, which has no float64 kernel.
  const session = await OrtSession.create(g.build());
  const out = await session.run({ x: { data: Float64Array.from([0, 1]), dims: [2] } });
  assert.deepEqual(Array.from(out.silu?.data as Float64Array), [0, 1 / (1 + Math.exp(-1))]);
  await session.dispose();
});

test('intra-op threads: RLHF_ORT_THREADS when set (a pod CPU limit), else every core; a bad value names the variable', async () => {
  assert.equal(defaultThreads({}), availableParallelism());
  assert.equal(defaultThreads({ RLHF_ORT_THREADS: '' }), availableParallelism());
  assert.equal(defaultThreads({ RLHF_ORT_THREADS: '3' }), 3);
  for (const bad of ['0', '2.5', 'two', '-1', '4096'])
    assert.throws(
      () => defaultThreads({ RLHF_ORT_THREADS: bad }),
      (e: unknown) =>
        e instanceof EngineError && e.field === 'RLHF_ORT_THREADS' && e.message.includes(`"${bad}"`),
      bad,
    );
  // A session made with the variable set runs (ORT takes the thread count).
  const g = new GraphBuilder();
  g.output(g.mul(g.input('x', 'float32', [2]), 3), 'y');
  const saved = process.env.RLHF_ORT_THREADS;
  process.env.RLHF_ORT_THREADS = '1';
  try {
    const session = await OrtSession.create(g.toBytes());
    const out = await session.run({ x: { data: Float32Array.from([1, 2]), dims: [2] } });
    assert.deepEqual(Array.from(out.y?.data as Float32Array), [3, 6]);
    await session.dispose();
  } finally {
    if (saved === undefined) delete process.env.RLHF_ORT_THREADS;
    else process.env.RLHF_ORT_THREADS = saved;
  }
});

test('idle intra-op threads spin unless told not to, memory patterns are kept unless shapes vary; such sessions run the same', async () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [3]);
  g.output(g.mul(x, 3), 'y');
  const bytes = g.toBytes();
  assert.equal(ortSessionOptions(bytes).extra, undefined);
  assert.deepEqual(ortSessionOptions(bytes, { spinning: false }).extra, {
    session: { intra_op: { allow_spinning: '0' } },
  });
  assert.equal(ortSessionOptions(bytes, { threads: 3 }).intraOpNumThreads, 3);
  // Inference on changing shapes skips ORT's per-shape memory pattern; training keeps it.
  assert.equal(ortSessionOptions(bytes).enableMemPattern, true);
  assert.equal(ortSessionOptions(bytes, inferenceSessionOptions).enableMemPattern, false);
  const session = await OrtSession.create(bytes, { ...inferenceSessionOptions, spinning: false, threads: 2 });
  const out = await session.run({ x: { data: Float32Array.from([1, 2, 3]), dims: [3] } });
  assert.deepEqual(Array.from(out.y?.data as Float32Array), [3, 6, 9]);
  await session.dispose();
});
