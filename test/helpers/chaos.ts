/**
 * Tools of the chaos suite: `rlhf run` as a child process on a nats-server the test owns, the run's stage
 * events as they happen (to strike at a chosen moment: a shard just started), the pid of a worker of the
 * run, and the figures and model bytes two runs must share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectNats, createLogger, type NatsConnection } from '@rlhf/platform';
import { type Stage, StageEvent } from '@rlhf/proto';
import { rlhfBin } from './cli.js';

export interface RunningCli {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts `rlhf run -f <spec> --out <out> --nats-url <url> ...extra`; it is SIGKILLed after `timeoutMs`. */
export function startRun(
  spec: string,
  out: string,
  natsUrl: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 150_000,
): RunningCli {
  const child = spawn(
    process.execPath,
    [rlhfBin, 'run', '-f', spec, '--out', out, '--nats-url', natsUrl, ...extra],
    { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
  return { child, stderr: () => stderr, exited };
}

export interface SeenEvent {
  at: number;
  iteration: number;
  stage: Stage;
  event: NonNullable<StageEvent['event']>;
}

export interface EventWatch {
  /** Every event seen so far. */
  seen: SeenEvent[];
  /** Resolves with the first event (already seen or to come) that `match` accepts. */
  next(match: (e: SeenEvent) => boolean, timeoutMs?: number): Promise<SeenEvent>;
  close(): Promise<void>;
}

/** Follows every stage event on the server (it reconnects when the server comes back). */
export async function watchEvents(natsUrl: string): Promise<EventWatch> {
  const nc: NatsConnection = await connectNats({
    url: natsUrl,
    name: 'chaos-test',
    logger: createLogger('chaos-test', { level: 'error' }),
  });
  const seen: SeenEvent[] = [];
  const waiters: Array<{ match: (e: SeenEvent) => boolean; resolve: (e: SeenEvent) => void }> = [];
  const sub = nc.subscribe('rlhf.events.>');
  void (async () => {
    for await (const m of sub) {
      let ev: StageEvent;
      try {
        ev = StageEvent.decode(m.data);
      } catch {
        continue;
      }
      if (!ev.key || !ev.event) continue;
      const e: SeenEvent = {
        at: Date.now(),
        iteration: ev.key.iteration,
        stage: ev.key.stage,
        event: ev.event,
      };
      seen.push(e);
      for (const w of [...waiters])
        if (w.match(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
    }
  })();
  await nc.flush();
  return {
    seen,
    next: (match, timeoutMs = 120_000) => {
      const already = seen.find(match);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the awaited stage event never came')), timeoutMs);
        waiters.push({
          match,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    close: async () => {
      sub.unsubscribe();
      await nc.close();
    },
  };
}

/** Matches the `started` event of a stage's shard (first delivery unless `attempt` says otherwise). */
export const started =
  (stage: Stage, iteration: number, after = 0) =>
  (e: SeenEvent): boolean =>
    e.event.$case === 'started' && e.stage === stage && e.iteration === iteration && e.at >= after;

/** The pid of the running `rlhf serve <service>` child of `parent`, from /proc. */
export async function workerPid(parent: number, service: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(join('/proc', entry, 'stat'), 'utf8');
      // Fields after the parenthesised command name: state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const argv = (await readFile(join('/proc', entry, 'cmdline'), 'utf8')).split('\0');
      const at = argv.indexOf('serve');
      if (at >= 0 && argv[at + 1] === service) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  throw new Error(`no running worker ${service} under pid ${parent}`);
}

export interface Summary {
  initial: Record<string, number | null>;
  iterations: Array<Record<string, unknown>>;
  judge: { lengthPenalty: number | null };
  rewardModel?: unknown;
  samples: unknown[];
}

/** What a run that was interrupted must reproduce exactly (durations differ by nature). */
export async function figures(out: string): Promise<object> {
  const s = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;
  return {
    initial: s.initial,
    lambda: s.judge.lengthPenalty,
    rm: s.rewardModel,
    iterations: s.iterations.map(({ durations: _d, ...rest }) => rest),
    samples: s.samples,
  };
}

/** The weights of the run's exported models, byte for byte. */
export async function modelBytes(out: string): Promise<Record<string, Buffer>> {
  const models: Record<string, Buffer> = {};
  for (const m of ['policy', 'initial-policy', 'reward-model'])
    models[m] = await readFile(join(out, 'models', m, 'model.onnx'));
  return models;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The worker's pid once it is spawned (looked up ahead, so a kill at a shard's start lands at once). */
export async function spawnedWorkerPid(parent: number, service: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await workerPid(parent, service);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}
