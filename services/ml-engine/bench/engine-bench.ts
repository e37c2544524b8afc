/** `rlhf bench engine`: every engine figure from one run, so the ratios compare like with like. */
import { decodeLoopThroughput } from './decode-loop-bench.js';
import { type GemmFigure, gemmPeak } from './gemm-peak.js';
import {
  type GenerationFigure,
  generationThroughput,
  mediumModel,
  smallModel,
  type TrainFigure,
  trainingThroughput,
} from './model-bench.js';

export interface EngineBench {
  gemm: { peak: number; figures: GemmFigure[] };
  training: Array<TrainFigure & { mfu: number }>;
  generation: GenerationFigure[];
  /** Batch 1, greedy, with the decode loop inside ORT both ways (decode-loop-bench.ts). */
  decodeLoop: GenerationFigure[];
}

export async function benchEngine(o: {
  quick: boolean;
  onProgress?: (what: string) => void;
}): Promise<EngineBench> {
  const seconds = o.quick ? 0.2 : 3;
  o.onProgress?.('GEMM peak');
  const gemm = await gemmPeak(o.quick ? [256] : [512, 1024, 2048], seconds);
  const training: EngineBench['training'] = [];
  for (const shape of o.quick ? [{ ...smallModel, seq: 32, batch: 4 }] : [smallModel, mediumModel]) {
    o.onProgress?.(`training ${shape.name}`);
    const t = await trainingThroughput(shape, seconds);
    training.push({ ...t, mfu: t.gflops / gemm.peak });
  }
  // The grid (both models at batch 1 and 64, after a 9-token prompt), and the batch-1 cases again
  // after a 64-token prompt: a decode step's fixed cost per ORT call weighs less against more work per
  // recomputed pass.
  const cases = o.quick
    ? [
        { shape: smallModel, batch: 1, prompt: 9 },
        { shape: smallModel, batch: 2, prompt: 9 },
      ]
    : [
        { shape: smallModel, batch: 1, prompt: 9 },
        { shape: smallModel, batch: 64, prompt: 9 },
        { shape: smallModel, batch: 1, prompt: 64 },
        { shape: mediumModel, batch: 1, prompt: 9 },
        { shape: mediumModel, batch: 64, prompt: 9 },
        { shape: mediumModel, batch: 1, prompt: 64 },
      ];
  const generation: GenerationFigure[] = [];
  for (const c of cases) {
    o.onProgress?.(`generation ${c.shape.name} batch ${c.batch} prompt ${c.prompt}`);
    generation.push(
      await generationThroughput(c.shape, c.batch, o.quick ? 8 : 64, {
        repeats: o.quick ? 2 : 5,
        minSeconds: seconds,
        promptTokens: c.prompt,
      }),
    );
  }
  // The batch-1 cases again with the loop inside ORT, cached and recomputing alike: what the KV cache saves
  // once neither side pays a call per token.
  const decodeLoop: GenerationFigure[] = [];
  for (const shape of o.quick ? [smallModel] : [smallModel, mediumModel]) {
    o.onProgress?.(`generation ${shape.name} batch 1 prompt 9, decode loop in ORT`);
    decodeLoop.push(
      await decodeLoopThroughput(shape, o.quick ? 8 : 64, { repeats: o.quick ? 2 : 5, minSeconds: seconds }),
    );
  }
  return { gemm, training, generation, decodeLoop };
}
