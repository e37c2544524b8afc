import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder, OrtSession } from '@rlhf/ml-engine';
import { RlhfError } from '@rlhf/platform';
import { SharedSession } from './shared-session.js';

async function doubler(): Promise<{ session: SharedSession; inner: OrtSession }> {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2]);
  g.output(g.mul(x, 2), 'y');
  const inner = await OrtSession.create(g.toBytes());
  return { session: new SharedSession(inner), inner };
}
const feeds = { x: { data: Float32Array.from([1, 2]), dims: [2] } };
const unavailable = (e: unknown) => e instanceof RlhfError && e.code === 'UNAVAILABLE';

test('a retired session serves its holders and runs in flight, and is released when the last one ends', async () => {
  const { session } = await doubler();
  const release = session.hold();
  const inFlight = session.run(feeds);
  let released = false;
  const disposed = session.dispose().then(() => {
    released = true;
  });
  assert.equal(session.isRetired, true);
  assert.deepEqual(Array.from((await inFlight).y?.data as Float32Array), [2, 4]);
  // Still held: runs go on after the cache let go of it.
  assert.deepEqual(Array.from((await session.run(feeds)).y?.data as Float32Array), [2, 4]);
  await new Promise((r) => setImmediate(r));
  assert.equal(released, false);
  release();
  release(); // a second call does nothing
  await disposed;
  assert.equal(released, true);
  await assert.rejects(session.run(feeds), unavailable);
  assert.throws(() => session.hold(), unavailable);
});

test('an unused session is released as soon as it is retired', async () => {
  const { session } = await doubler();
  await session.run(feeds);
  await session.dispose();
  await assert.rejects(session.run(feeds), unavailable);
  // Disposing again resolves at once.
  await session.dispose();
});
