/**
 * ORT's dense float32 MatMul throughput on this machine: the "practical peak" that training-step
 * throughput is compared against. Each run multiplies a chain of CHAIN square MatMuls (so feeding and
 * fetching tensors across the JS boundary is a small part of the time), through the same OrtSession
 * options training uses. B is fed as an input, as training graphs feed their weights; ORT can prepack a
 * constant B, so the initializer figure is printed too, for reference.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-gemm.ts [size ...]   (default 512 1024 2048)
 * Prints measured figures only. The best repeat is printed next to the median because other processes
 * on a shared 2-core machine move the median a lot; a quiet machine shows both close together.
 */
import { availableParallelism } from 'node:os';
import { GraphBuilder } from '../src/onnx/graph-builder.js';
import { Rng } from '../src/random/rng.js';
import { OrtSession } from '../src/runtime/ort-session.js';

const CHAIN = 4;
const MIN_SECONDS = 2;
const MIN_REPEATS = 5;

function randomMatrix(rng: Rng, n: number): Float32Array {
  // Scaled so the chain's products stay O(1).
  const scale = 1 / Math.sqrt(n);
  return Float32Array.from({ length: n * n }, () => scale * rng.normal());
}

async function measure(n: number, weightAsInitializer: boolean): Promise<number[]> {
  const rng = new Rng(n);
  const b = randomMatrix(rng, n);
  const g = new GraphBuilder({ name: `gemm${n}` });
  let y = g.input('a', 'float32', [n, n]);
  const w = weightAsInitializer ? g.initializer('b', b, [n, n]) : g.input('b', 'float32', [n, n]);
  for (let i = 0; i < CHAIN; i++) y = g.matMul(y, w);
  g.output(y, 'y');
  const session = await OrtSession.create(g.build());
  const feeds = {
    a: { data: randomMatrix(rng, n), dims: [n, n] },
    ...(weightAsInitializer ? {} : { b: { data: b, dims: [n, n] } }),
  };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const flops = 2 * n * n * n * CHAIN;
  const rates: number[] = [];
  const start = performance.now();
  while (rates.length < MIN_REPEATS || performance.now() - start < MIN_SECONDS * 1000) {
    const t0 = performance.now();
    await session.run(feeds);
    rates.push(flops / ((performance.now() - t0) / 1000) / 1e9);
  }
  await session.dispose();
  return rates;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const sizes = process.argv.slice(2).map(Number);
const list = sizes.length ? sizes : [512, 1024, 2048];
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1).padStart(7)} (best ${Math.max(...xs)
    .toFixed(1)
    .padStart(6)})`;
console.log(
  `ORT float32 MatMul, ${availableParallelism()} intra-op threads, chain of ${CHAIN}; GFLOP/s median (best)`,
);
console.log('size    B as input (training)    B as initializer (prepacked)    repeats');
let peak = 0;
for (const n of list) {
  const fed = await measure(n, false);
  const packed = await measure(n, true);
  peak = Math.max(peak, median(fed));
  console.log(
    `${String(n).padEnd(7)} ${fmt(fed)}       ${fmt(packed)}              ${fed.length}/${packed.length}`,
  );
}
console.log(`practical peak (best median, B as input): ${peak.toFixed(1)} GFLOP/s`);
