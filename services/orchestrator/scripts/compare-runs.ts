/**
 * Are two `rlhf run`s of the same spec and seed the same run? Compares their summary.json figures
 * (timestamps and durations left out) and, to find where they part, every artifact in their object stores:
 * each run's JetStream store (<out>/nats/jetstream) is opened with a nats-server of its own, and the objects
 * are listed in the order run A wrote them, with "same" or "DIFF" by digest. For JSONL artifacts that differ
 * the first differing line is shown (timing fields such as a training log's tokens/s are ignored), for
 * model.onnx the weights that differ and by how much.
 *
 * Usage: node --import tsx services/orchestrator/scripts/compare-runs.ts [--run] [-f RUN.yaml]
 *          [--workers N [--workers M]] [--all] OUT_A OUT_B
 *   --run  first runs `rlhf run -f RUN.yaml --out OUT_x --restart` into both directories (default
 *          examples/ci-small.yaml), one after the other.
 *   --workers N (twice: one for each run) passes --workers to the runs.
 *   --all  lists the identical artifacts too (by default only the differing ones and a count).
 * Exits 0 when the figures and the artifacts (timing fields aside) are identical, 1 when anything differs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeModel, tensorToData } from '@rlhf/ml-engine';
import { connectNats, createLogger, openObjectStore, startLocalNatsServer } from '@rlhf/platform';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    run: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    file: { type: 'string', short: 'f' },
    workers: { type: 'string', multiple: true },
  },
});
if (positionals.length !== 2) {
  console.error(
    'usage: compare-runs.ts [--run] [-f RUN.yaml] [--workers N [--workers M]] [--all] OUT_A OUT_B',
  );
  process.exit(2);
}
const [outA, outB] = positionals as [string, string];
const root = fileURLToPath(new URL('../../../', import.meta.url));
const runFile = flags.file ?? join(root, 'examples/ci-small.yaml');

/** --workers N for both runs, or --workers N --workers M for A and B (default 1). */
const workersOf = (out: string): string =>
  flags.workers?.[out === outA ? 0 : flags.workers.length - 1] ?? '1';

if (flags.run) {
  for (const out of [outA, outB]) {
    const started = performance.now();
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'services/cli/bin/rlhf.mjs'),
        'run',
        '-f',
        runFile,
        '--out',
        out,
        '--restart',
        '--workers',
        workersOf(out),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(2);
    }
    console.log(`ran ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

/** summary.json without what differs by nature: timestamps and stage durations. */
function figures(summary: Record<string, unknown>): unknown {
  const { run, iterations, ...rest } = summary as {
    run: Record<string, unknown>;
    iterations: Array<Record<string, unknown>>;
  };
  const { startedAt: _s, finishedAt: _f, ...runRest } = run;
  return { run: runRest, ...rest, iterations: iterations.map(({ durations: _d, ...it }) => it) };
}

/** Leaf paths whose values differ. */
function diff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
      diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
  } else if (JSON.stringify(a) !== JSON.stringify(b))
    out.push(`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

const summaries = await Promise.all(
  [outA, outB].map(async (o) => JSON.parse(await readFile(join(o, 'summary.json'), 'utf8'))),
);
const summaryDiffs: string[] = [];
diff(figures(summaries[0]), figures(summaries[1]), 'summary', summaryDiffs);
console.log(
  summaryDiffs.length === 0
    ? 'summary.json figures: identical'
    : `summary.json figures: ${summaryDiffs.length} differ\n  ${summaryDiffs.join('\n  ')}`,
);

interface Obj {
  name: string;
  digest: string;
  size: number;
  mtime: string;
  data: () => Promise<Uint8Array>;
}

/** Every object of the run's artifact bucket, through a nats-server started on its store. */
async function openRun(out: string) {
  const storeDir = join(out, 'nats', 'jetstream');
  if (!existsSync(storeDir)) throw new Error(`${storeDir} does not exist (a run with NATS_URL set?)`);
  const server = await startLocalNatsServer({ storeDir });
  const nc = await connectNats({
    url: server.url,
    name: 'compare-runs',
    logger: createLogger('compare-runs', { level: 'warn' }),
  });
  const os = await openObjectStore(nc);
  const objects = new Map<string, Obj>();
  for (const e of await os.list())
    if (!e.deleted)
      objects.set(e.name, {
        name: e.name,
        digest: e.digest,
        size: e.size,
        mtime: e.mtime,
        data: async () => (await os.getBlob(e.name)) ?? new Uint8Array(),
      });
  return {
    objects,
    close: async () => {
      await nc.drain();
      await server.stop();
    },
  };
}

/** The weights (ONNX initializers) that differ between two model.onnx files, and by how much. */
function weightDiff(a: Uint8Array, b: Uint8Array): string {
  const tensors = (bytes: Uint8Array) =>
    new Map(decodeModel(bytes).graph.initializer.map((t) => [t.name, tensorToData(t)]));
  const [ta, tb] = [tensors(a), tensors(b)];
  const differing: string[] = [];
  for (const [name, xa] of ta) {
    const xb = tb.get(name);
    if (!xb || xb.length !== xa.length) {
      differing.push(`${name} (missing or reshaped)`);
      continue;
    }
    let max = 0;
    for (let i = 0; i < xa.length; i++) max = Math.max(max, Math.abs(Number(xa[i]) - Number(xb[i])));
    if (max > 0) differing.push(`${name} (max |diff| ${max.toExponential(2)})`);
  }
  return differing.length
    ? `${differing.length} weights differ, e.g. ${differing.slice(0, 3).join(', ')}`
    : 'the weights are equal (the graphs differ)';
}

function lineDiff(a: Uint8Array, b: Uint8Array): string {
  const la = new TextDecoder().decode(a).split('\n');
  const lb = new TextDecoder().decode(b).split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++)
    if (la[i] !== lb[i])
      return `line ${i + 1}:\n      A ${(la[i] ?? '<none>').slice(0, 300)}\n      B ${(lb[i] ?? '<none>').slice(0, 300)}`;
  return 'no line differs';
}

/** Fields that measure time, not results: a training log's speeds, a manifest's entry for that log. */
const TIMING = new Set(['tokensPerSecond', 'elapsedMs', 'etaMs', 'seconds', 'startedAt', 'finishedAt']);

/** A JSON or JSONL artifact with its timing fields left out (null for other artifacts). */
function untimed(name: string, data: Uint8Array): string | null {
  if (!/\.jsonl?$/.test(name)) return null;
  const strip = (_k: string, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      // A model manifest lists training_log.jsonl's size and digest, which vary with its timings.
      if (o.name === 'training_log.jsonl') return { name: o.name };
      return Object.fromEntries(Object.entries(o).filter(([k]) => !TIMING.has(k)));
    }
    return v;
  };
  const text = new TextDecoder().decode(data);
  const lines = name.endsWith('.jsonl') ? text.split('\n').filter((l) => l !== '') : [text];
  return lines.map((l) => JSON.stringify(JSON.parse(l, strip))).join('\n');
}

const [a, b] = await Promise.all([openRun(outA), openRun(outB)]);
let artifactsDiffer = false;
try {
  const names = [...a.objects.values()].sort((x, y) => x.mtime.localeCompare(y.mtime)).map((o) => o.name);
  for (const n of b.objects.keys()) if (!a.objects.has(n)) names.push(n);
  let same = 0;
  let timings = 0;
  let first = true;
  for (const name of names) {
    const x = a.objects.get(name);
    const y = b.objects.get(name);
    if (x && y && x.digest === y.digest) {
      same++;
      if (flags.all) console.log(`  same  ${name}`);
      continue;
    }
    artifactsDiffer = true;
    if (!x || !y) {
      console.log(`  ONLY ${x ? 'A' : 'B'} ${name}`);
      continue;
    }
    const [da, db] = await Promise.all([x.data(), y.data()]);
    const [ua, ub] = [untimed(name, da), untimed(name, db)];
    if (ua !== null && ua === ub) {
      timings++;
      if (flags.all) console.log(`  same  ${name} (but for timings)`);
      continue;
    }
    let detail = '';
    if (first || flags.all) {
      if (name.endsWith('.onnx')) detail = weightDiff(da, db);
      else if (/\.(jsonl|json|txt)$/.test(name)) detail = lineDiff(da, db);
      first = false;
    }
    console.log(`  DIFF  ${name} (${x.size} vs ${y.size} bytes)${detail ? `\n      ${detail}` : ''}`);
  }
  console.log(
    `artifacts: ${same} of ${names.length} identical, ${timings} more identical but for timing fields`,
  );
  artifactsDiffer = same + timings !== names.length;
} finally {
  await Promise.all([a.close(), b.close()]);
}
process.exit(summaryDiffs.length === 0 && !artifactsDiffer ? 0 : 1);
