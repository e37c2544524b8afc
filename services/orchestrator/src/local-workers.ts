/**
 * The local launcher: the stage workers of a run as child processes of the CLI (`rlhf serve <service>`
 * with NATS), the local counterpart of the controller's Jobs. Each worker serves its stages' work queues;
 * `replicas` of the sharded stages' services share the shards. Workers stop when the CLI stops, and on
 * their own if it is killed.
 *
 * Workers are supervised: one that exits while the run needs it (killed, out of memory, NATS unreachable
 * at start-up) is started again after a backoff, with a notice naming it. One that keeps failing ends the
 * run: `signal` is aborted with an error naming the worker and its log, and the stage waiting on it stops.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type NatsAuth, natsAuthEnv, natsAuthFields, RlhfError } from '@rlhf/platform';

export interface WorkerPlan {
  service: string;
  replicas: number;
}

export interface LocalWorkers {
  stop(): Promise<void>;
  /** Processes that exited while the run needed them (for an error message). */
  exited(): string[];
  /** Aborted, with an RlhfError naming the worker, once a worker failed more restarts in a row than allowed. */
  signal: AbortSignal;
  /** What is known of a worker by the name its stage events carry (state, pid, log file), if it is one of these. */
  describe(worker: string): string | undefined;
}

export interface Supervision {
  /** Restarts in a row a worker gets; its next exit ends the run (default 5). */
  maxRestarts?: number;
  /** First restart delay, doubled for each further exit in a row (default 500 ms). */
  backoffMs?: number;
  /** Longest restart delay (default 10 s). */
  maxBackoffMs?: number;
  /** A worker that stayed up this long has its failures forgiven (default 30 s). */
  stableMs?: number;
  /**
   * True when an exit of a worker started at `startedAt` (Date.now()) is not the worker's fault (NATS was
   * unreachable meanwhile: every worker fails alike then). Such exits are restarted but not counted.
   */
  excused?: (startedAt: number) => boolean;
  /** Tells the person at the terminal (a restart, giving up). */
  notice?: (line: string) => void;
}

const defaults = { maxRestarts: 5, backoffMs: 500, maxBackoffMs: 10_000, stableMs: 30_000 };

interface Slot {
  name: string;
  service: string;
  logFile: string | undefined;
  proc: ChildProcess | null;
  startedAt: number;
  /** Exits in a row that counted (not excused). */
  failures: number;
  /** Exits in a row, counted or not (drives the backoff). */
  exits: number;
  restartTimer: NodeJS.Timeout | null;
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null) =>
  signal ? `signal ${signal}` : `code ${code}`;

export async function startLocalWorkers(o: {
  /** argv that runs the rlhf CLI (its `serve` command is appended). */
  command: string[];
  natsUrl: string;
  /** Credentials for natsUrl, passed to the workers as NATS_* variables. */
  natsAuth?: NatsAuth;
  plan: WorkerPlan[];
  /** Each worker logs to <logDir>/<service>-<i>.log; without it, to this process's stderr (a pod's log). */
  logDir?: string;
  env?: NodeJS.ProcessEnv;
  supervision?: Supervision;
  /** Put before each worker's name in its stage events (a pod's name: every pod has a `dpo-trainer-0`). */
  namePrefix?: string;
}): Promise<LocalWorkers> {
  if (o.logDir) await mkdir(o.logDir, { recursive: true });
  const sup = { ...defaults, ...o.supervision };
  const slots: Slot[] = [];
  const gone: string[] = [];
  const abort = new AbortController();
  let stopping = false;

  const launch = (slot: Slot): void => {
    const log = slot.logFile ? createWriteStream(slot.logFile, { flags: 'a' }) : process.stderr;
    const [exe, ...pre] = o.command as [string, ...string[]];
    const proc = spawn(
      exe,
      [...pre, 'serve', slot.service, '--port', '0', '--metrics-port', 'off', '--host', '127.0.0.1'],
      {
        env: {
          ...process.env,
          ...o.env,
          // The run's NATS credentials, and no others (a shell's NATS_CREDS is not for a local server).
          ...Object.fromEntries(Object.values(natsAuthFields).map((f) => [f.env, undefined])),
          ...natsAuthEnv(o.natsAuth ?? {}),
          NATS_URL: o.natsUrl,
          RLHF_EXIT_WITH_PARENT: '1',
          RLHF_WORKER_NAME: `${o.namePrefix ?? ''}${slot.name}`,
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    slot.proc = proc;
    slot.startedAt = Date.now();
    // Both pipes write into one file: it is closed once both are done ('close'), not when the first ends.
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    let ended = false;
    const onEnd = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      if (log !== process.stderr) proc.once('close', () => log.end());
      slot.proc = null;
      if (!stopping) exitedWhileNeeded(slot, code, signal);
    };
    proc.once('exit', onEnd);
    // A worker that cannot be spawned at all (the command is missing) counts as one that exited.
    proc.once('error', () => onEnd(proc.exitCode ?? 127, null));
  };

  const exitedWhileNeeded = (slot: Slot, code: number | null, signal: NodeJS.Signals | null): void => {
    const where = slot.logFile ? `; see ${slot.logFile}` : '';
    gone.push(`${slot.name} exited (${signal ?? code})${where}`);
    if (Date.now() - slot.startedAt >= sup.stableMs) {
      slot.failures = 0;
      slot.exits = 0;
    }
    const excused = sup.excused?.(slot.startedAt) ?? false;
    if (!excused) slot.failures++;
    slot.exits++;
    if (slot.failures > sup.maxRestarts) {
      abort.abort(
        new RlhfError(
          'UNAVAILABLE',
          `exited ${slot.failures} times in a row (last: ${describeExit(code, signal)})${where}`,
          {
            field: `worker ${slot.name}`,
            fix: `read ${slot.logFile ?? 'its log'} for why it exits; finished stages are kept, so run the same command again once it is fixed (--worker-restarts sets how many restarts in a row a worker gets)`,
          },
        ),
      );
      sup.notice?.(`worker ${slot.name} keeps exiting; the run stops${where}`);
      return;
    }
    const delay = Math.min(sup.maxBackoffMs, sup.backoffMs * 2 ** (slot.exits - 1));
    const why = excused
      ? 'NATS was unreachable; not counted'
      : `restart ${slot.failures} of at most ${sup.maxRestarts} in a row`;
    sup.notice?.(
      `worker ${slot.name} exited (${describeExit(code, signal)}); restarting it in ${delay / 1000} s (${why})${where}`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (!stopping) launch(slot);
    }, delay);
  };

  for (const w of o.plan)
    for (let i = 0; i < w.replicas; i++) {
      const name = `${w.service}-${i}`;
      const slot: Slot = {
        name,
        service: w.service,
        logFile: o.logDir ? join(o.logDir, `${name}.log`) : undefined,
        proc: null,
        startedAt: 0,
        failures: 0,
        exits: 0,
        restartTimer: null,
      };
      slots.push(slot);
      launch(slot);
    }

  return {
    exited: () => [...gone],
    signal: abort.signal,
    describe: (worker) => {
      const slot = slots.find((s) => `${o.namePrefix ?? ''}${s.name}` === worker);
      if (!slot) return undefined;
      const log = slot.logFile ? `, log ${slot.logFile}` : '';
      return slot.proc
        ? `${slot.name} (running, pid ${slot.proc.pid}${log})`
        : `${slot.name} (exited, ${slot.restartTimer ? 'restarting' : 'not restarted'}${log})`;
    },
    stop: async () => {
      stopping = true;
      for (const slot of slots) if (slot.restartTimer) clearTimeout(slot.restartTimer);
      await Promise.all(
        slots.map(
          ({ proc }) =>
            new Promise<void>((resolve) => {
              if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
              const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
              proc.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              proc.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
