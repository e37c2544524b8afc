/**
 * The kubelet half: every pod bound to this node (or unbound) runs its first container as a local
 * process; the pod's status follows it (Pending -> Running -> Succeeded/Failed with the exit code), the
 * container restarts per restartPolicy, output goes to a log file, and deleting the pod stops the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { InProcessClient, JsonObject } from '../fake-api-server/index.js';
import {
  type CommandMapping,
  type Container,
  ContainerConfigError,
  commandLine,
  containerEnv,
} from './container-env.js';

export interface PodRunnerOptions extends CommandMapping {
  cwd: string;
  baseEnv: NodeJS.ProcessEnv;
  logDir: string;
  nodeName: string;
  killGraceMs: number;
}

interface Running {
  namespace: string;
  name: string;
  uid: string;
  container: string;
  child: ChildProcess | undefined;
  restartCount: number;
  deleted: boolean;
  exited: Promise<void>;
}

interface PodMeta {
  name: string;
  namespace: string;
  uid: string;
  deletionTimestamp?: string;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export class PodRunner {
  private readonly pods = new Map<string, Running>();
  /** Every started process until it exits, including those of pods already gone from the store. */
  private readonly live = new Set<Running>();

  constructor(
    private readonly api: InProcessClient,
    private readonly opts: PodRunnerOptions,
  ) {}

  logPath(namespace: string, pod: string, container?: string): string {
    const c = container ?? this.pods.get(`${namespace}/${pod}`)?.container ?? 'main';
    return join(this.opts.logDir, `${namespace}_${pod}_${c}.log`);
  }

  /** A container's log so far, or undefined when it never started here. */
  readLog(namespace: string, pod: string, container?: string): string | undefined {
    try {
      return readFileSync(this.logPath(namespace, pod, container), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Pods with a live process. */
  running(): { namespace: string; name: string; pid: number }[] {
    return [...this.live]
      .filter((r) => r.child?.exitCode === null && r.child.signalCode === null)
      .map((r) => ({ namespace: r.namespace, name: r.name, pid: r.child!.pid! }));
  }

  /** Reacts to one pod event from the store. */
  onPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: JsonObject): void {
    const meta = pod.metadata as PodMeta;
    const key = `${meta.namespace}/${meta.name}`;
    const known = this.pods.get(key);
    if (type === 'DELETED' || meta.deletionTimestamp) {
      if (known && known.uid === meta.uid) this.kill(known);
      if (type === 'DELETED') this.pods.delete(key);
      return;
    }
    if (known) return;
    const spec = (pod.spec ?? {}) as { nodeName?: string };
    const status = (pod.status ?? {}) as { phase?: string };
    if (spec.nodeName && spec.nodeName !== this.opts.nodeName) return;
    if (status.phase && status.phase !== 'Pending') return;
    this.start(pod);
  }

  private start(pod: JsonObject): void {
    const meta = pod.metadata as PodMeta;
    const container = ((pod.spec as { containers: Container[] }).containers ?? [])[0]!;
    const running: Running = {
      namespace: meta.namespace,
      name: meta.name,
      uid: meta.uid,
      container: container.name,
      child: undefined,
      restartCount: 0,
      deleted: false,
      exited: Promise.resolve(),
    };
    this.pods.set(`${meta.namespace}/${meta.name}`, running);
    this.launch(running, pod, container);
  }

  private launch(running: Running, pod: JsonObject, container: Container): void {
    const log = openSync(this.logPath(running.namespace, running.name, running.container), 'a');
    let argv: string[];
    let env: Record<string, string>;
    try {
      env = containerEnv(this.api, pod, container);
      argv = commandLine(container, env, this.opts);
    } catch (e) {
      if (!(e instanceof ContainerConfigError)) throw e;
      writeSync(log, `${e.message}\n`);
      closeSync(log);
      this.terminated(running, pod, container, 128, 'StartError', now(), e.message);
      return;
    }
    const startedAt = now();
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.opts.cwd,
      env: { ...this.opts.baseEnv, HOSTNAME: running.name, ...env },
      stdio: ['ignore', log, log],
      // Its own process group, so stopping the pod stops whatever the command started too.
      detached: true,
    });
    closeSync(log);
    running.child = child;
    this.live.add(running);
    running.exited = new Promise<void>((resolve) => {
      let settled = false;
      child.once('error', (err) => {
        if (settled) return;
        settled = true;
        const fd = openSync(this.logPath(running.namespace, running.name, running.container), 'a');
        writeSync(fd, `${err.message}\n`);
        closeSync(fd);
        this.terminated(running, pod, container, 128, 'StartError', startedAt, err.message);
        resolve();
      });
      child.once('exit', (code, signal) => {
        if (settled) return;
        settled = true;
        const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
        this.terminated(running, pod, container, exitCode, exitCode === 0 ? 'Completed' : 'Error', startedAt);
        resolve();
      });
    }).finally(() => this.live.delete(running));
    if (child.pid !== undefined) {
      this.writeStatus(running, {
        phase: 'Running',
        startTime: startedAt,
        hostIP: '127.0.0.1',
        podIP: '127.0.0.1',
        conditions: podConditions(true),
        containerStatuses: [
          {
            name: container.name,
            image: container.image ?? '',
            imageID: '',
            containerID: `fake://${child.pid}`,
            ready: true,
            started: true,
            restartCount: running.restartCount,
            state: { running: { startedAt } },
          },
        ],
      });
    }
  }

  private terminated(
    running: Running,
    pod: JsonObject,
    container: Container,
    exitCode: number,
    reason: string,
    startedAt: string,
    message?: string,
  ): void {
    if (running.deleted) return;
    const policy = (pod.spec as { restartPolicy?: string }).restartPolicy ?? 'Always';
    const terminated: JsonObject = { exitCode, reason, startedAt, finishedAt: now() };
    if (message) terminated.message = message;
    if (running.child?.pid) terminated.containerID = `fake://${running.child.pid}`;
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (restart) {
      running.restartCount += 1;
      this.writeStatus(running, {
        phase: 'Running',
        conditions: podConditions(false),
        containerStatuses: [
          {
            name: container.name,
            image: container.image ?? '',
            imageID: '',
            ready: false,
            started: false,
            restartCount: running.restartCount,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated },
          },
        ],
      });
      const fresh = this.api.find('pods', running.namespace, running.name);
      if (fresh && !running.deleted) this.launch(running, fresh, container);
      return;
    }
    this.writeStatus(running, {
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: podConditions(false),
      containerStatuses: [
        {
          name: container.name,
          image: container.image ?? '',
          imageID: '',
          ready: false,
          started: false,
          restartCount: running.restartCount,
          state: { terminated },
        },
      ],
    });
  }

  private writeStatus(running: Running, status: JsonObject): void {
    const pod = this.api.find('pods', running.namespace, running.name);
    if (!pod || (pod.metadata as PodMeta).uid !== running.uid) return;
    const merged = { ...((pod.status ?? {}) as JsonObject), ...status };
    this.api.updateStatus('pods', running.namespace, { ...pod, status: merged });
  }

  private kill(running: Running): void {
    running.deleted = true;
    const child = running.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // Already gone.
      }
    };
    signalGroup('SIGTERM');
    const timer = setTimeout(() => signalGroup('SIGKILL'), this.opts.killGraceMs);
    timer.unref();
    void running.exited.then(() => clearTimeout(timer));
  }

  /** Stops every process and waits for them to exit. */
  async stopAll(): Promise<void> {
    const all = [...new Set([...this.pods.values(), ...this.live])];
    for (const r of all) this.kill(r);
    await Promise.all(all.map((r) => r.exited));
  }
}

function podConditions(ready: boolean): JsonObject[] {
  const t = now();
  const cond = (type: string, status: boolean) => ({
    type,
    status: status ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: t,
  });
  return [
    cond('Initialized', true),
    cond('Ready', ready),
    cond('ContainersReady', ready),
    cond('PodScheduled', true),
  ];
}
