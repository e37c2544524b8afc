/**
 * Scale benchmark of the controller against the fake API server (no kubelet: Jobs are created, not run):
 * 200 RLHFRuns created at once; for each, the time from its creation to its first Running status (its
 * finalizer added, its spec checked, its setup Job created, its status written), reconcile durations, and
 * API requests per reconcile. The baseline is the same controller with one reconcile worker instead of
 * the default four, measured in the same process.
 *
 *   npm run bench:controller [-- --runs 200]
 *
 * A warm-up round runs first, then the two settings alternate (three rounds each); the median round of each
 * setting is printed, so neither order nor JIT warm-up favours one of them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startController } from '@rlhf/controller';
import { createLogger } from '@rlhf/platform';
import { parse as parseYaml } from 'yaml';
import { FakeApiServer } from '../kube/fake-api-server/index.js';
import { clientsFor } from '../kube/fixtures/clients.js';

const root = new URL('../../', import.meta.url).pathname;
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 200;
const tag = Date.now().toString(36).slice(-4);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

interface Result {
  concurrency: number;
  latencyMs: number[];
  allDoneMs: number;
  reconciles: number;
  durationsMs: number[];
  controllerRequests: number;
  writes: number;
}

let round = 0;
async function measure(server: FakeApiServer, concurrency: number, runs: number): Promise<Result> {
  const ns = `bench-${round++}-${tag}`;
  const c = clientsFor(server, ns);
  const template = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as object;
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  let resolveAll: () => void = () => {};
  const allRunning = new Promise<void>((r) => {
    resolveAll = r;
  });
  const unwatch = server.client.watch('rlhfruns.rlhf.dev', (type, obj) => {
    const meta = obj.metadata as { namespace: string; name: string };
    if (meta.namespace !== ns) return;
    if (type === 'ADDED' && !created.has(meta.name)) created.set(meta.name, performance.now());
    const phase = (obj.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Running' && !running.has(meta.name)) {
      running.set(meta.name, performance.now());
      if (running.size === runs) resolveAll();
    }
  });
  const controller = await startController({
    kc: c.kc,
    natsUrl,
    namespace: ns,
    concurrency,
    jobConfig: { image: 'bench', natsUrl },
    metricsPort: null,
    logger: createLogger('bench', { level: 'error' }),
  });
  server.resetRequestCounts();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: runs }, (_, i) =>
      c.custom.createNamespacedCustomObject({
        group: 'rlhf.dev',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'rlhfruns',
        body: { ...template, metadata: { name: `run-${i}`, namespace: ns } },
      }),
    ),
  );
  await allRunning;
  const allDoneMs = performance.now() - t0;
  // Let the follow-up reconciles (the Jobs' and status events) settle before counting.
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const n = controller.stats().reconciles;
    if (n === last) break;
    last = n;
  }
  const counts = server.requestCounts();
  const stats = controller.stats();
  await controller.stop();
  unwatch();
  const ours = Object.entries(counts).filter(([k]) => !k.startsWith('create rlhfruns'));
  const controllerRequests = ours.reduce((a, [, v]) => a + v, 0);
  const writes = [...stats.apiRequests.values()].reduce((a, b) => a + b, 0);
  return {
    concurrency,
    latencyMs: [...running.entries()].map(([n, t]) => t - (created.get(n) as number)),
    allDoneMs,
    reconciles: stats.reconciles,
    durationsMs: stats.durationsMs,
    controllerRequests,
    writes,
  };
}

const server = await FakeApiServer.start();
for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
  server.loadCrdFile(join(root, 'deploy/crds', f));
// A warm-up round (JIT, connections) first, then the two settings alternated three times each.
await measure(server, 4, Math.min(50, runs));
const rounds: Result[] = [];
for (let i = 0; i < 3; i++) for (const c of [1, 4]) rounds.push(await measure(server, c, runs));
await server.stop();
const median = (xs: number[]) => pct(xs, 50);
/** The round whose all-Running time is the median of its setting's rounds. */
const medianRound = (c: number): Result => {
  const mine = rounds.filter((r) => r.concurrency === c);
  const m = median(mine.map((r) => r.allDoneMs));
  return mine.find((r) => r.allDoneMs === m) as Result;
};
const baseline = medianRound(1);
const tuned = medianRound(4);

const f1 = (x: number) => x.toFixed(1);
console.log(
  `${runs} RLHFRuns created at once against the fake API server (NATS ${natsUrl}); 3 rounds per setting, the median round shown`,
);
console.log(
  'workers | creation->Running p50 / p99 ms | all Running ms | reconciles | reconcile p50 / p99 ms | API requests / reconcile (writes / reconcile)',
);
for (const r of [baseline, tuned])
  console.log(
    `${String(r.concurrency).padStart(7)} | ${f1(pct(r.latencyMs, 50))} / ${f1(pct(r.latencyMs, 99))} | ${f1(r.allDoneMs)} | ${r.reconciles} | ${f1(pct(r.durationsMs, 50))} / ${f1(pct(r.durationsMs, 99))} | ${(r.controllerRequests / r.reconciles).toFixed(2)} (${(r.writes / r.reconciles).toFixed(2)})`,
  );
console.log(
  `ratio (1 worker / 4 workers): p50 latency ${(pct(baseline.latencyMs, 50) / pct(tuned.latencyMs, 50)).toFixed(2)}x, all Running ${(baseline.allDoneMs / tuned.allDoneMs).toFixed(2)}x`,
);
