import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from './rng.js';

test('same seed gives the same stream; different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(
    xs,
    Array.from({ length: 8 }, () => b.nextU32()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 8 }, () => c.nextU32()),
  );
});

test('state round-trips so a resumed stream continues exactly', () => {
  const a = new Rng(7);
  a.normal();
  const saved = JSON.parse(JSON.stringify(a.state()));
  const expected = [a.normal(), a.uniform(), a.int(100)];
  const b = Rng.fromState(saved);
  assert.deepEqual([b.normal(), b.uniform(), b.int(100)], expected);
});

test('uniform and normal have the right moments', () => {
  const r = new Rng(1);
  const n = 200_000;
  let su = 0;
  let sn = 0;
  let sn2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    su += u;
    const z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  assert.ok(Math.abs(su / n - 0.5) < 0.005);
  assert.ok(Math.abs(sn / n) < 0.01);
  assert.ok(Math.abs(sn2 / n - 1) < 0.02);
});

test('shuffle is a permutation', () => {
  const r = new Rng(3);
  const xs = r.shuffle(Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(
    [...xs].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 50 }, (_, i) => i),
  );
});
