/** `rlhf bench engine`: every engine figure from one run, so the ratios compare like with like. */
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
  const generation: GenerationFigure[] = [];
  for (const batch of o.quick ? [2] : [1, 64]) {
    o.onProgress?.(`generation batch ${batch}`);
    generation.push(
      await generationThroughput(smallModel, batch, o.quick ? 8 : 64, {
        repeats: o.quick ? 2 : 5,
        minSeconds: seconds,
      }),
    );
  }
  return { gemm, training, generation };
}
