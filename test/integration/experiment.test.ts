/**
 * `rlhf experiment` on the CI-sized run: variant b (with setup) and the offline variants c (annotator pairs
 * through spec.pairs.dataset) and o (best-vs-worst of pi_0's samples), each an RLHFRun over NATS workers on
 * b's artifacts; RESULTS.md and results.json at the end. Run again, it resumes: every stage is skipped and the
 * rows are the same.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-experiment-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Row {
  seed: number;
  variant: string;
  rmAccuracy: number | null;
  lambda: number | null;
  seconds: number;
  iterations: Array<Record<string, number | null>>;
}
interface Summary {
  iterations: Array<{ pairs: number; policy: string }>;
}

const args = () => [
  'experiment',
  '-f',
  example,
  '--seeds',
  '3',
  '--variants',
  'c,o',
  '--horizon',
  '3',
  '--out',
  join(dir, 'exp'),
];
const rowsOf = async (): Promise<Row[]> =>
  JSON.parse(await readFile(join(dir, 'exp', 'results.json'), 'utf8')) as Row[];
const summaryOf = async (v: string): Promise<Summary> =>
  JSON.parse(await readFile(join(dir, 'exp', `s3-${v}`, 'summary.json'), 'utf8')) as Summary;
let first: Row[];

test('variants b, c and o as runs on one NATS, tabled in RESULTS.md; b runs to the horizon', async () => {
  const r = await runCli(args(), {}, 240_000);
  assert.equal(r.code, 0, r.stderr);
  first = await rowsOf();
  assert.deepEqual(
    first.map((x) => x.variant),
    ['b', 'c', 'o'],
  );
  const [b, c, o] = first;
  assert.equal(b?.iterations.length, 3, 'b runs --horizon iterations');
  assert.equal(c?.iterations.length, 1, 'offline: one DPO round');
  assert.equal(o?.iterations.length, 1);
  assert.equal(typeof b?.rmAccuracy, 'number', "b's setup reports the RM accuracy");
  assert.equal(c?.rmAccuracy, b?.rmAccuracy, "every variant is tabled with its seed's setup");
  // c trains on as many annotator pairs as the base run's two iterations of 32 prompts (not b's horizon of
  // three), without generating or judging.
  assert.equal((await summaryOf('c')).iterations[0]?.pairs, 64);
  assert.match(
    r.stderr,
    /\[seed 3 c\] iteration 1 generate: not needed: offline pairs from nats-obj:\/\/.*ci-small-s3-b\/data\/preferences\.jsonl/,
  );
  const oPairs = (await summaryOf('o')).iterations[0]?.pairs ?? 0;
  assert.ok(oPairs > 0 && oPairs <= 64, `o pairs ${oPairs}`);
  assert.match((await summaryOf('o')).iterations[0]?.policy ?? '', /ci-small-s3-o\/iter-1\/models\/policy$/);
  const md = await readFile(join(dir, 'exp', 'RESULTS.md'), 'utf8');
  assert.match(md, /Produced by `rlhf experiment -f .*ci-small\.yaml --seeds 3 --variants c,o/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| 2 \|/);
  assert.match(md, /\| \(c\) offline DPO, annotator pairs \| 2 \|/);
  assert.match(md, /\| \(o\) offline, best-vs-worst of SFT samples \| 2 \|/);
  assert.match(md, /\| \(b\) win rate above \(c\)'s by >= 0\.20 \|/);
  // The goals read the base run's last iteration; b's third shows in the over-optimisation table.
  assert.match(md, /## Against the goals \(iteration 2, means over 1 seeds\)/);
  assert.doesNotMatch(
    md,
    /\| \(b\) online, RM \+ length penalty \| 3 \| [-0-9.]+ \| [-0-9.]+ \| [-0-9.]+ \| [-0-9.]+ \| [-0-9.]+ \|$/m,
  );
  assert.match(md, /## Past iteration 2: proxy and gold reward against KL/);
  assert.match(md, /\| \(b\) online, RM \+ length penalty \| 3 \| [0-9.]+ \| -?[0-9.]+ \| -?[0-9.]+ \|/);
  assert.equal(r.stdout, md, 'the table is printed too');
});

test('run again, the experiment resumes: every stage skipped, the same rows', async () => {
  const r = await runCli(args(), {}, 180_000);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /\[seed 3 [bco]\] [^\n]*\[#*-+\]/, 'no stage ran again');
  assert.match(r.stderr, /\[seed 3 c\] iteration 1 train: done in an earlier run \(skipped\)/);
  const again = await rowsOf();
  const figures = (rows: Row[]) => rows.map(({ seconds: _s, ...rest }) => rest);
  assert.deepEqual(figures(again), figures(first));
});
