/**
 * spec.engines.generate.type openai end to end: the CI-sized run (examples/ci-small.yaml) once on the
 * built-in engine and once with its baseline, generate and evaluate stages handed to a separate
 * `rlhf serve policy-generator --openai-port` process, which serves each iteration's policy by its
 * nats-obj:// URI (openai.model unset) from the run's NATS object store, behind a bearer token the run's
 * workers take from OPENAI_API_KEY. Both runs must end with the same summary.json figures: each request's
 * seed is the built-in engine's stream key, so the server samples the same tokens (KL, a sum of float32
 * log-probs computed in other batch shapes, to 1e-5).
 *
 * The server reads the run's NATS for the policies only (`--stage-work off`): the run's own workers take
 * every shard and send each prompt to it, which its request counter confirms.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LocalNatsServer, startLocalNatsServer } from '@rlhf/platform';
import { type ServiceProcess, startServiceProcess } from '@rlhf/platform/testing';
import { rlhfBin, runCli } from '../helpers/cli.js';
import { withTimeout } from '../helpers/timeout.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
const TOKEN = 'engine-test-token-0123456789';
let dir: string;
let nats: LocalNatsServer;
let server: ServiceProcess;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-openai-engine-'));
  nats = await startLocalNatsServer();
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  server = await withTimeout(
    startServiceProcess(rlhfBin, {
      command: ['serve', 'policy-generator'],
      env: { RLHF_MODEL_CACHE: join(dir, 'server-cache') },
      args: [
        '--nats-url',
        nats.url,
        '--stage-work',
        'off',
        '--auth-token-file',
        tokenFile,
        '--openai-port',
        '0',
      ],
    }),
    90_000,
    () => 'rlhf serve policy-generator start',
  );
  assert.ok(server.openaiPort !== null, 'the banner names the OpenAI port');
});

after(async () => {
  if (server) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  initial: Record<string, unknown>;
  iterations: Array<Record<string, unknown>>;
  judge: { lengthPenalty: number | null };
  samples: Array<Record<string, unknown>>;
}

/** The figures of a run (durations differ by nature). */
const figures = (s: Summary) => ({
  initial: s.initial,
  lambda: s.judge.lengthPenalty,
  iterations: s.iterations.map(({ durations: _d, ...rest }) => rest),
  samples: s.samples,
});

const readSummary = async (out: string): Promise<Summary> =>
  JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;

/** Completion requests the server answered 200, from its metrics endpoint. */
async function servedRequests(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('rlhf_openai_requests_total{') &&
        l.includes('route="completions"') &&
        l.includes('status="200"'),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

test('the CI-sized run with generation on a separate OpenAI-compatible server ends with the built-in figures', async () => {
  const builtin = join(dir, 'builtin');
  const r1 = await runCli(['run', '-f', example, '--out', builtin], {}, 300_000);
  assert.equal(r1.code, 0, r1.stderr);

  const spec = await readFile(example, 'utf8');
  const served = join(dir, 'served.yaml');
  await writeFile(
    served,
    `${spec}  engines:\n    generate:\n      type: openai\n      openai: { url: "http://127.0.0.1:${server.openaiPort}/v1" }\n`,
  );
  const before = await servedRequests();
  const out = join(dir, 'openai');
  const r2 = await runCli(
    ['run', '-f', served, '--out', out, '--nats-url', nats.url],
    { OPENAI_API_KEY: TOKEN },
    300_000,
  );
  assert.equal(r2.code, 0, r2.stderr);
  const a = figures(await readSummary(builtin));
  const b = figures(await readSummary(out));
  assert.equal(a.iterations.length, 2);
  // KL sums the policy's log-probs of its samples, which the server computes in its own decode batches
  // (the built-in evaluate shard in its generate() batches): float32 sums of other batch shapes, so they
  // agree to about 1e-7, not bit for bit. Every other figure is the same: same tokens, same rewards,
  // same pairs, same DPO steps.
  const withoutKl = (f: typeof a) => ({
    ...f,
    initial: { ...f.initial, kl: null },
    iterations: f.iterations.map((it) => ({ ...it, kl: null })),
  });
  assert.deepEqual(withoutKl(b), withoutKl(a));
  const kls = (f: typeof a) => [f.initial.kl, ...f.iterations.map((it) => it.kl)] as number[];
  kls(b).forEach((kl, i) => {
    const want = kls(a)[i] as number;
    assert.ok(Math.abs(kl - want) <= 1e-5, `KL of policy ${i}: ${kl} against the built-in ${want}`);
  });
  // One request per prompt of the stages the engine runs: pi_0's 16 held-out prompts, then per iteration
  // 32 generated and 16 evaluated (setup's length-penalty fit samples built in, as the stage table says).
  assert.equal(
    (await servedRequests()) - before,
    16 + 2 * (32 + 16),
    'every prompt was sampled by the server',
  );
});

test('a run whose server refuses the key stops with the URL and the fix', async () => {
  const spec = await readFile(example, 'utf8');
  const served = join(dir, 'bad-key.yaml');
  await writeFile(
    served,
    `${spec.replace('name: ci-small', 'name: ci-small-bad-key')}  engines:\n    generate:\n      type: openai\n      openai: { url: "http://127.0.0.1:${server.openaiPort}/v1" }\n`,
  );
  const r = await runCli(
    ['run', '-f', served, '--out', join(dir, 'bad-key'), '--nats-url', nats.url],
    { OPENAI_API_KEY: 'wrong-key' },
    300_000,
  );
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${server.openaiPort}/v1/completions refused`));
  assert.match(r.stderr, /OPENAI_API_KEY/);
});
