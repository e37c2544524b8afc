/**
 * The local launcher: the stage workers of a run as child processes of the CLI (`rlhf serve <service>`
 * with NATS), the local counterpart of the controller's Jobs. Each worker serves its stages' work queues;
 * `replicas` of the sharded stages' services share the shards. Workers stop when the CLI stops, and on
 * their own if it is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type NatsAuth, natsAuthEnv, natsAuthFields } from '@rlhf/platform';

export interface WorkerPlan {
  service: string;
  replicas: number;
}

export interface LocalWorkers {
  stop(): Promise<void>;
  /** Processes that exited while the run needed them (for an error message). */
  exited(): string[];
}

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
}): Promise<LocalWorkers> {
  if (o.logDir) await mkdir(o.logDir, { recursive: true });
  const children: Array<{ name: string; proc: ChildProcess }> = [];
  const gone: string[] = [];
  let stopping = false;
  for (const w of o.plan)
    for (let i = 0; i < w.replicas; i++) {
      const name = `${w.service}-${i}`;
      const logFile = o.logDir ? join(o.logDir, `${name}.log`) : undefined;
      const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : process.stderr;
      const [exe, ...pre] = o.command as [string, ...string[]];
      const proc = spawn(
        exe,
        [...pre, 'serve', w.service, '--port', '0', '--metrics-port', 'off', '--host', '127.0.0.1'],
        {
          env: {
            ...process.env,
            ...o.env,
            // The run's NATS credentials, and no others (a shell's NATS_CREDS is not for a local server).
            ...Object.fromEntries(Object.values(natsAuthFields).map((f) => [f.env, undefined])),
            ...natsAuthEnv(o.natsAuth ?? {}),
            NATS_URL: o.natsUrl,
            RLHF_EXIT_WITH_PARENT: '1',
            LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      proc.stdout?.pipe(log, { end: log !== process.stderr });
      proc.stderr?.pipe(log, { end: log !== process.stderr });
      proc.on('exit', (code, signal) => {
        if (!stopping) gone.push(`${name} exited (${signal ?? code})${logFile ? `; see ${logFile}` : ''}`);
      });
      children.push({ name, proc });
    }
  return {
    exited: () => [...gone],
    stop: async () => {
      stopping = true;
      await Promise.all(
        children.map(
          ({ proc }) =>
            new Promise<void>((resolve) => {
              if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
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
