import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Command } from 'commander';

const f1 = (x: number): string => x.toFixed(1);

/**
 * The widest x86 vector extension the CPU reports (Linux), since the same CPU model name comes with and without
 * AVX-512 on shared hosts and the GEMM and per-kernel figures differ between them: ', AVX-512', ', AVX2' or ''.
 */
function vectorUnits(): string {
  try {
    const flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .match(/^flags\s*:(.*)$/m)?.[1]
        ?.split(/\s+/) ?? [];
    if (flags.includes('avx512f')) return ', AVX-512';
    if (flags.includes('avx2')) return ', AVX2';
  } catch {
    // No /proc/cpuinfo (not Linux): the model name alone.
  }
  return '';
}

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .summary('measure performance (figures and ratios from one run; nothing is asserted)');
  bench
    .command('engine')
    .summary('GEMM peak, training tokens/s and MFU, generation tokens/s with and without the KV cache')
    .description(
      [
        'Measures in one run: ONNX Runtime dense float32 MatMul throughput (the practical peak), the training',
        'throughput of a small (d=128, 2 layers) and a medium (d=256, 4 layers) model at seq 128, batch 16, with',
        'model FLOP utilisation against that peak (FLOPs/token = 6 x params + 12 x layers x seq x hidden), and',
        'generation tokens/s at batch 1 and 64 for 64 new tokens with and without the KV cache (small model,',
        '9-token prompts; then batch 1 with 64-token prompts and the medium model), timed in rounds of back-to-back',
        'runs, the first of a round rotating; the speed-up is the median of the per-round ratios. Medians of',
        "repeats. Batch 1 is timed again on one thread both ways (a served model's setting for runs this small),",
        "the cached side on generate()'s row loop (up to 32 tokens an ORT call; the policy generator's decode",
        'loop, 16 a step; the same tokens and log-probabilities). Last, batch 1 with the whole decode loop inside',
        'one ONNX Runtime call both ways (an ONNX Loop, greedy, 1 thread): the KV cache speed-up without the cost',
        'of a call per token on either side, the recompute included.',
      ].join('\n'),
    )
    .option('--quick', 'tiny sizes: a smoke test, not meaningful figures')
    .option('--json', 'print the figures as JSON')
    .action(async (f: { quick?: boolean; json?: boolean }) => {
      const { benchEngine } = await import('@rlhf/ml-engine/bench');
      const r = await benchEngine({
        quick: f.quick === true,
        onProgress: (w) => process.stderr.write(`measuring ${w}...\n`),
      });
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const out: string[] = [];
      out.push(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}${vectorUnits()}`);
      out.push('', 'GEMM (float32 MatMul, B fed as input)     GFLOP/s');
      for (const g of r.gemm.figures)
        out.push(`  ${String(g.size).padEnd(6)}x ${String(g.size).padEnd(30)} ${f1(g.gflops)}`);
      out.push(`  practical peak (best median)             ${f1(r.gemm.peak)}`);
      out.push('', 'training step (forward + backward in ORT)  params     tokens/s   GFLOP/s   MFU vs peak');
      for (const t of r.training) {
        out.push(
          `  ${t.model.padEnd(40)} ${String(t.parameters).padEnd(10)} ${f1(t.tokensPerSecond).padEnd(10)} ${f1(t.gflops).padEnd(9)} ${(100 * t.mfu).toFixed(0)}%`,
        );
      }
      out.push(
        '',
        'generation, 64 new tokens                  cached tok/s   uncached tok/s   speed-up (median of rounds)',
      );
      for (const g of r.generation) {
        const label = `${g.model}, batch ${g.batch}, prompt ${g.promptTokens}`;
        out.push(
          `  ${label.padEnd(40)} ${f1(g.cached).padEnd(14)} ${f1(g.uncached).padEnd(16)} ${g.speedup.toFixed(1)}x (${g.repeats} rounds)`,
        );
        if (g.rowLoop)
          out.push(
            `    ${'the same, 1 thread, on the row loop'.padEnd(38)} ${f1(g.rowLoop.tokensPerSecond).padEnd(14)} ${f1(g.rowLoop.uncachedTokensPerSecond).padEnd(16)} ${g.rowLoop.speedup.toFixed(1)}x`,
          );
      }
      out.push(
        '',
        'batch 1, decode loop inside ORT (greedy,   cached tok/s   uncached tok/s   speed-up (median of pairs)',
        '  1 thread; both ways one ORT call)',
      );
      for (const g of r.decodeLoop) {
        const label = `${g.model}, batch 1, prompt ${g.promptTokens}`;
        out.push(
          `  ${label.padEnd(40)} ${f1(g.cached).padEnd(14)} ${f1(g.uncached).padEnd(16)} ${g.speedup.toFixed(1)}x (${g.repeats} pairs)`,
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
