/**
 * Scale benchmark of the controller: 200 RLHFRuns created at once; for each, the time from its creation to
 * its first Running status (its finalizer added, its spec checked, its setup Job created, its status
 * written), reconcile durations, and API requests per reconcile. The baseline is the same controller with
 * one reconcile worker instead of the default four, measured in the same process.
 *
 *   npm run bench:controller [-- --runs 200]                 the fake API server of test/kube
 *   npm run bench:controller -- --real [--kube-controllers]  the fake one and a real kube-apiserver, side by side
 *
 * Nothing runs the Jobs: there is no kubelet. With --real only etcd and kube-apiserver start, so both servers
 * carry the same workload; --kube-controllers adds the controller manager and the scheduler, whose Job
 * controller creates the setup Jobs' pods and writes Job status (a different workload: see bench-targets.ts).
 *
 * A warm-up round per server runs first, then the settings alternate (three rounds each); the median round
 * of each setting is printed, so neither order nor JIT warm-up favours one of them. Runs are watched, and
 * the controller's requests counted, the same way on both servers (bench-targets.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { startController } from '@rlhf/controller';
import { createLogger } from '@rlhf/platform';
import { parse as parseYaml } from 'yaml';
import { type BenchTarget, fakeTarget, realTarget } from './bench-targets.js';

const root = new URL('../../', import.meta.url).pathname;
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 200;
const real = process.argv.includes('--real');
const kubeControllers = process.argv.includes('--kube-controllers');
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${runs}`);
if (kubeControllers && !real) throw new Error('--kube-controllers needs --real');
const tag = Date.now().toString(36).slice(-4);
// A round that does not finish in this time has stopped making progress (a refused write, a lost watch).
const roundLimitMs = 600_000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

interface Result {
  target: string;
  concurrency: number;
  latencyMs: number[];
  allDoneMs: number;
  reconciles: number;
  durationsMs: number[];
  controllerRequests: number;
  writes: number;
}

let round = 0;
async function measure(target: BenchTarget, concurrency: number, runs: number): Promise<Result> {
  const ns = `bench-${round++}-${tag}`;
  await target.prepareNamespace(ns);
  const custom = target.kc.makeApiClient(CustomObjectsApi);
  const template = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as object;
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  let resolveAll: () => void = () => {};
  let rejectAll: (e: Error) => void = () => {};
  const allRunning = new Promise<void>((resolve, reject) => {
    resolveAll = resolve;
    rejectAll = reject;
  });
  // It may fail before it is awaited (during the creates); the await below still sees the failure.
  allRunning.catch(() => {});
  // A watch may end cleanly at any time (the real server closes them); watch again from the last version.
  let resourceVersion: string | undefined;
  let watch: AbortController | undefined;
  let watching = true;
  const startWatch = async (): Promise<void> => {
    watch = await new Watch(target.kc).watch(
      `/apis/rlhf.dev/v1alpha1/namespaces/${ns}/rlhfruns`,
      resourceVersion ? { resourceVersion } : {},
      (type, obj: { metadata: { name: string; resourceVersion: string }; status?: { phase?: string } }) => {
        resourceVersion = obj.metadata.resourceVersion;
        const name = obj.metadata.name;
        if (type === 'ADDED' && !created.has(name)) created.set(name, performance.now());
        if (obj.status?.phase === 'Running' && !running.has(name)) {
          running.set(name, performance.now());
          if (running.size === runs) resolveAll();
        }
      },
      (err) => {
        if (!watching) return;
        if (!err) {
          startWatch().catch(rejectAll);
          return;
        }
        // The real server answers 429 while the watch cache of a new resource initializes.
        if (++watchErrors > 40) rejectAll(new Error(`the watch of ${ns} failed: ${err}`));
        else setTimeout(() => startWatch().catch(rejectAll), 250);
      },
    );
  };
  let watchErrors = 0;
  await startWatch();
  const kc = target.controllerKc();
  const controller = await startController({
    kc,
    natsUrl,
    namespace: ns,
    concurrency,
    jobConfig: { image: 'bench', natsUrl },
    metricsPort: null,
    logger: createLogger('bench', { level: 'error' }),
  });
  // The informers' first lists and watches are start-up, not work per run.
  const startRequests = kc.requests;
  const limit = setTimeout(
    () =>
      rejectAll(
        new Error(`${target.name}: ${running.size} of ${runs} runs Running after ${roundLimitMs} ms`),
      ),
    roundLimitMs,
  );
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: runs }, (_, i) =>
      custom.createNamespacedCustomObject({
        group: 'rlhf.dev',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'rlhfruns',
        body: { ...template, metadata: { name: `run-${i}`, namespace: ns } },
      }),
    ),
  );
  try {
    await allRunning;
  } finally {
    clearTimeout(limit);
  }
  const allDoneMs = performance.now() - t0;
  // Let the follow-up reconciles (the Jobs' and status events) settle before counting.
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const n = controller.stats().reconciles;
    if (n === last) break;
    last = n;
  }
  const controllerRequests = kc.requests - startRequests;
  const stats = controller.stats();
  await controller.stop();
  watching = false;
  watch?.abort();
  const writes = [...stats.apiRequests.values()].reduce((a, b) => a + b, 0);
  return {
    target: target.name,
    concurrency,
    latencyMs: [...running.entries()].map(([n, t]) => t - (created.get(n) as number)),
    allDoneMs,
    reconciles: stats.reconciles,
    durationsMs: stats.durationsMs,
    controllerRequests,
    writes,
  };
}

const targets = [await fakeTarget(root)];
if (real) targets.push(await realTarget(root, kubeControllers));
const rounds: Result[] = [];
try {
  // A warm-up round per server (JIT, connections) first, then every setting alternated three times.
  for (const t of targets) await measure(t, 4, Math.min(50, runs));
  for (let i = 0; i < 3; i++)
    for (const t of targets) for (const c of [1, 4]) rounds.push(await measure(t, c, runs));
} finally {
  for (const t of targets) await t.stop();
}

const median = (xs: number[]) => pct(xs, 50);
/** The round whose all-Running time is the median of its setting's rounds. */
const medianRound = (target: string, c: number): Result => {
  const mine = rounds.filter((r) => r.target === target && r.concurrency === c);
  const m = median(mine.map((r) => r.allDoneMs));
  return mine.find((r) => r.allDoneMs === m) as Result;
};

const f1 = (x: number) => x.toFixed(1);
const x2 = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
console.log(
  `${runs} RLHFRuns created at once (NATS ${natsUrl}); 3 rounds per setting, the median round shown. Servers:`,
);
for (const t of targets)
  console.log(`  ${t.name}: ${t.describe}; up with the CRDs served in ${t.startSeconds.toFixed(1)} s`);
console.log(
  'server | workers | creation->Running p50 / p99 ms | all Running ms | reconciles | reconcile p50 / p99 ms | API requests / reconcile (writes / reconcile)',
);
for (const t of targets)
  for (const c of [1, 4]) {
    const r = medianRound(t.name, c);
    console.log(
      `${t.name.padStart(6)} | ${String(c).padStart(7)} | ${f1(pct(r.latencyMs, 50))} / ${f1(pct(r.latencyMs, 99))} | ${f1(r.allDoneMs)} | ${r.reconciles} | ${f1(pct(r.durationsMs, 50))} / ${f1(pct(r.durationsMs, 99))} | ${(r.controllerRequests / r.reconciles).toFixed(2)} (${(r.writes / r.reconciles).toFixed(2)})`,
    );
  }
for (const t of targets) {
  const one = medianRound(t.name, 1);
  const four = medianRound(t.name, 4);
  console.log(
    `${t.name}, 1 worker / 4 workers: p50 latency ${x2(pct(one.latencyMs, 50), pct(four.latencyMs, 50))}, all Running ${x2(one.allDoneMs, four.allDoneMs)}`,
  );
}
if (real)
  for (const c of [1, 4]) {
    const f = medianRound('fake', c);
    const r = medianRound('real', c);
    console.log(
      `real / fake, ${c} worker${c > 1 ? 's' : ''}: p50 latency ${x2(pct(r.latencyMs, 50), pct(f.latencyMs, 50))}, all Running ${x2(r.allDoneMs, f.allDoneMs)}, reconcile p50 ${x2(pct(r.durationsMs, 50), pct(f.durationsMs, 50))}, requests / reconcile ${x2(r.controllerRequests / r.reconciles, f.controllerRequests / f.reconciles)}`,
    );
  }
