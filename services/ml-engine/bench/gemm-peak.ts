/**
 * ORT's dense float32 MatMul throughput: the practical peak that training throughput is compared with. A
 * chain of square MatMuls per run keeps the JS boundary a small part of the time; B is fed as an input, as
 * training graphs feed their weights.
 */
import { GraphBuilder } from '../src/onnx/graph-builder.js';
import { Rng } from '../src/random/rng.js';
import { OrtSession } from '../src/runtime/ort-session.js';
import { median, timeRepeats } from './timing.js';

const CHAIN = 4;

export interface GemmFigure {
  size: number;
  gflops: number;
}

export async function gemmThroughput(n: number, minSeconds: number): Promise<GemmFigure> {
  const rng = new Rng(n);
  const matrix = (): Float32Array => Float32Array.from({ length: n * n }, () => rng.normal() / Math.sqrt(n));
  const g = new GraphBuilder({ name: `gemm${n}` });
  let y = g.input('a', 'float32', [n, n]);
  const w = g.input('b', 'float32', [n, n]);
  for (let i = 0; i < CHAIN; i++) y = g.matMul(y, w);
  g.output(y, 'y');
  const session = await OrtSession.create(g.build());
  const feeds = { a: { data: matrix(), dims: [n, n] }, b: { data: matrix(), dims: [n, n] } };
  try {
    const secs = await timeRepeats(async () => void (await session.run(feeds)), {
      warmup: 2,
      repeats: 5,
      minSeconds,
    });
    return { size: n, gflops: (2 * n * n * n * CHAIN) / median(secs) / 1e9 };
  } finally {
    await session.dispose();
  }
}

/** The best median over the sizes. */
export async function gemmPeak(
  sizes: readonly number[],
  minSeconds: number,
): Promise<{ peak: number; figures: GemmFigure[] }> {
  const figures: GemmFigure[] = [];
  for (const n of sizes) figures.push(await gemmThroughput(n, minSeconds));
  return { peak: Math.max(...figures.map((f) => f.gflops)), figures };
}
