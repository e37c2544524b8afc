/**
 * `lengthPenalty: auto`: fit lambda so the penalty cancels the length bias the reward model learned.
 * Regress the RM score on gold reward and length (characters) over SFT samples by least squares:
 *   r ~ a + b * gold + c * chars;   lambda = max(c, 0)
 * so r - lambda * chars no longer grows with length at equal gold.
 *
 * Over which samples: the grammatical ones (`fitLengthPenaltyOnSamples`). The gold of the reference task is
 * a gate: -2 for any sample that does not parse or end with EOS, whatever its text. That constant is not on
 * the scale the annotators labelled (they only ever saw grammatical reviews, so neither did the RM), and the
 * broken samples are the long ones, so keeping them in the regression halves the gold coefficient and pushes
 * the length coefficient up (2-layer d=64 pi_0 at 76% grammatical: lambda 0.053 over all samples, 0.044 over
 * the grammatical ones, 0.042 over the SFT data itself).
 */
export interface LengthFit {
  lambda: number;
  intercept: number;
  goldCoefficient: number;
  lengthCoefficient: number;
  /** Share of the RM score's variance that gold and length explain together. */
  r2: number;
  samples: number;
}

function solve3(a: number[][], b: number[]): number[] {
  // Gaussian elimination with partial pivoting on a 3x3 system.
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let r = c + 1; r < 3; r++)
      if (Math.abs((m[r] as number[])[c] as number) > Math.abs((m[p] as number[])[c] as number)) p = r;
    [m[c], m[p]] = [m[p] as number[], m[c] as number[]];
    const piv = (m[c] as number[])[c] as number;
    if (Math.abs(piv) < 1e-12)
      throw new Error('the length-penalty regression is singular: gold and length do not vary');
    for (let r = 0; r < 3; r++) {
      if (r === c) continue;
      const f = ((m[r] as number[])[c] as number) / piv;
      for (let k = c; k < 4; k++)
        (m[r] as number[])[k] = ((m[r] as number[])[k] as number) - f * ((m[c] as number[])[k] as number);
    }
  }
  return m.map((row, i) => (row[3] as number) / (row[i] as number));
}

export function fitLengthPenalty(
  reward: readonly number[],
  gold: readonly number[],
  chars: readonly number[],
): LengthFit {
  const n = reward.length;
  if (n < 3 || gold.length !== n || chars.length !== n)
    throw new Error(`need >= 3 aligned samples to fit the length penalty, got ${n}`);
  const xtx = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  const xty = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const x = [1, gold[i] as number, chars[i] as number];
    for (let r = 0; r < 3; r++) {
      xty[r] = (xty[r] as number) + (x[r] as number) * (reward[i] as number);
      for (let c = 0; c < 3; c++)
        (xtx[r] as number[])[c] = ((xtx[r] as number[])[c] as number) + (x[r] as number) * (x[c] as number);
    }
  }
  // A whisper of ridge on the slopes keeps the system solvable when gold does not vary (e.g. every sample of a
  // weak policy is ungrammatical and scores -2); the length coefficient is then still estimated.
  for (const d of [1, 2]) (xtx[d] as number[])[d] = ((xtx[d] as number[])[d] as number) * (1 + 1e-9) + 1e-9;
  const [a, b, c] = solve3(xtx, xty) as [number, number, number];
  let meanR = 0;
  for (const r of reward) meanR += r / n;
  let residual = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = reward[i] as number;
    residual += (r - (a + b * (gold[i] as number) + c * (chars[i] as number))) ** 2;
    total += (r - meanR) ** 2;
  }
  const r2 = total > 0 ? 1 - residual / total : Number.NaN;
  return { lambda: Math.max(c, 0), intercept: a, goldCoefficient: b, lengthCoefficient: c, r2, samples: n };
}

export interface LengthFitSample {
  reward: number;
  gold: number;
  chars: number;
  /** Whether the task's gold is defined on the sample (parses and ended with EOS), not the gate's value. */
  grammatical: boolean;
}

/** Fewest grammatical samples the fit uses on their own; with fewer it falls back to every sample. */
export const minGrammaticalFitSamples = 30;

/**
 * The fit over pi_0's grammatical samples, where gold and the RM score are on the annotators' scale; over all
 * samples when fewer than `minGrammaticalFitSamples` are grammatical (a tiny or untrained policy).
 */
export type SampleLengthFit = LengthFit & { over: 'grammatical' | 'all' };

export function fitLengthPenaltyOnSamples(samples: readonly LengthFitSample[]): SampleLengthFit {
  const grammatical = samples.filter((s) => s.grammatical);
  const used = grammatical.length >= minGrammaticalFitSamples ? grammatical : samples;
  const fit = fitLengthPenalty(
    used.map((s) => s.reward),
    used.map((s) => s.gold),
    used.map((s) => s.chars),
  );
  return { ...fit, over: used === grammatical ? 'grammatical' : 'all' };
}
