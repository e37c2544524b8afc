/**
 * One pod on the node, from binding to deletion: volumes and /etc/hosts prepared, init containers run one
 * after another (sidecars, restartPolicy Always, keep running), then every container at once, each
 * restarted per restartPolicy (with a short doubling back-off), startup, readiness and liveness probes
 * run, and the pod's status written through pods/status after
 * every change. Deletion sends SIGTERM to every container's process group, SIGKILL after the grace period,
 * writes the final status and deletes the pod with gracePeriodSeconds 0, as the kubelet does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '../../kube/fake-api-server/index.js';
import {
  type CommandMapping,
  type Container,
  ContainerConfigError,
  commandLine,
  containerEnv,
  type ObjectLookup,
} from '../../kube/fake-kubelet/container-env.js';
import { writePodHosts } from './cluster-hosts.js';
import { containerBinds, mountedCommand, type VolumeMount } from './mount-command.js';
import { mergePatch, type NodeApi } from './node-api.js';
import { envObjects, PodConfigError } from './pod-objects.js';
import { type ContainerRecord, now, PodConditions, podStatus } from './pod-status.js';
import { type PodVolumes, preparePodVolumes } from './pod-volumes.js';
import { type ContainerPort, type Probe, probeOnce } from './probes.js';
import { reapGroup, signalGroup } from './process-group.js';

export interface WorkerContext extends CommandMapping {
  api: NodeApi;
  /** Host directory for the pod's volumes and /etc/hosts: <podRoot>/<uid>. */
  podRoot: string;
  logDir: string;
  /** Working directory of containers without workingDir. */
  cwd: string;
  baseEnv: NodeJS.ProcessEnv;
  /** In-cluster API address for KUBERNETES_SERVICE_HOST / _PORT. */
  apiHost: string;
  apiPort: string;
  restartBackoffMs: number;
}

interface PodContainer extends Container {
  workingDir?: string;
  volumeMounts?: VolumeMount[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  /** `Always` on an init container makes it a sidecar: it starts in order and runs beside the others. */
  restartPolicy?: 'Always';
}

interface PodSpec {
  containers: PodContainer[];
  initContainers?: PodContainer[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
}

interface PodMeta {
  name: string;
  namespace: string;
  uid: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  creationTimestamp?: string;
}

interface Slot {
  spec: PodContainer;
  record: ContainerRecord;
  child?: ChildProcess;
  exited?: Promise<number>;
  probeTimers: Set<NodeJS.Timeout>;
  sidecar: boolean;
  /** Set when the startup probe (if any) has passed: readiness and liveness probes start then. */
  onStarted?: () => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PodWorker {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  private pod: JsonObject;
  private readonly spec: PodSpec;
  private readonly init: Slot[];
  private readonly main: Slot[];
  private readonly conditions = new PodConditions();
  /** Set once the pod is over; until then the phase follows the containers (currentPhase). */
  private phase: 'Pending' | 'Succeeded' | 'Failed' = 'Pending';
  private initialized = false;
  private readonly startTime = now();
  private volumes: PodVolumes | undefined;
  private terminating = false;
  /** Resolves when termination begins, for waits that must not outlast the pod. */
  private readonly stopping: Promise<void>;
  private markStopping: () => void = () => undefined;
  private sidecarsStopping = false;
  private writing: Promise<void> = Promise.resolve();
  private termination: Promise<void> | undefined;
  /** The Secrets and ConfigMaps the containers' env refers to, as last fetched. */
  private lookup: ObjectLookup = { find: () => undefined };
  /** Why the last status write failed, for a test to show. */
  lastError: string | undefined;

  constructor(
    private readonly ctx: WorkerContext,
    pod: JsonObject,
  ) {
    this.pod = pod;
    this.stopping = new Promise((resolve) => {
      this.markStopping = resolve;
    });
    const meta = pod.metadata as PodMeta;
    this.namespace = meta.namespace;
    this.name = meta.name;
    this.uid = meta.uid;
    this.spec = pod.spec as PodSpec;
    const slot = (c: PodContainer): Slot => ({
      spec: c,
      record: {
        name: c.name,
        image: c.image ?? '',
        restartCount: 0,
        ready: false,
        state: { waiting: { reason: 'PodInitializing' } },
        lastState: {},
      },
      probeTimers: new Set(),
      sidecar: false,
    });
    this.init = (this.spec.initContainers ?? []).map((c) => ({
      ...slot(c),
      sidecar: c.restartPolicy === 'Always',
    }));
    this.main = this.spec.containers.map(slot);
    if (this.init.length === 0) this.initialized = true;
    for (const s of this.main)
      s.record.state = { waiting: { reason: this.initialized ? 'ContainerCreating' : 'PodInitializing' } };
  }

  get firstContainer(): string {
    return this.main[0]!.spec.name;
  }

  logPath(container: string): string {
    return join(this.ctx.logDir, `${this.namespace}_${this.name}_${container}.log`);
  }

  /** Live container processes. */
  processes(): { container: string; pid: number }[] {
    return [...this.init, ...this.main]
      .filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null)
      .map((s) => ({ container: s.spec.name, pid: s.child!.pid! }));
  }

  isRunning(container: string): boolean {
    return this.processes().some((p) => p.container === container);
  }

  start(): void {
    void this.run().catch((e) => {
      this.lastError = (e as Error).message;
    });
  }

  /** The newest copy of the pod from the watch. */
  update(pod: JsonObject): void {
    this.pod = pod;
    const meta = pod.metadata as PodMeta;
    if (meta.deletionTimestamp && !this.terminating) {
      const grace = meta.deletionGracePeriodSeconds ?? this.spec.terminationGracePeriodSeconds ?? 30;
      void this.terminate(grace * 1000, true);
    }
  }

  private get podDir(): string {
    return join(this.ctx.podRoot, this.uid);
  }

  private async run(): Promise<void> {
    mkdirSync(this.podDir, { recursive: true });
    await this.writeStatus();
    if (!(await this.prepare())) return;
    const sidecars: Promise<void>[] = [];
    for (const slot of this.init) {
      if (slot.sidecar) {
        // Runs until the pod ends, restarted whatever the pod's restartPolicy; the next init container
        // waits until it has started (its startup probe passed).
        const started = new Promise<void>((resolve) => {
          slot.onStarted = resolve;
        });
        sidecars.push(this.keepRunning(slot, 'Always'));
        await Promise.race([started, this.stopping]);
        if (this.terminating) return;
        continue;
      }
      for (;;) {
        const code = await this.runOnce(slot);
        if (this.terminating) return;
        if (code === 0) break;
        if (this.policy() === 'Never') {
          this.phase = 'Failed';
          for (const m of this.main) m.record.state = { waiting: { reason: 'PodInitializing' } };
          await this.writeStatus();
          this.volumes?.release();
          return;
        }
        await this.backoff(slot);
        if (this.terminating) return;
      }
    }
    this.initialized = true;
    for (const m of this.main) m.record.state = { waiting: { reason: 'ContainerCreating' } };
    await Promise.all(this.main.map((slot) => this.keepRunning(slot)));
    if (this.terminating) return;
    if (sidecars.length > 0) {
      // The main containers are done: sidecars are stopped, as the kubelet stops them, and do not count.
      this.sidecarsStopping = true;
      const grace = (this.spec.terminationGracePeriodSeconds ?? 30) * 1000;
      await this.stopSlots(
        this.init.filter((s) => s.sidecar),
        grace,
      );
      await Promise.all(sidecars);
    }
    const failed = this.main.some((s) => (s.record.state.terminated as { exitCode: number }).exitCode !== 0);
    this.phase = failed ? 'Failed' : 'Succeeded';
    await this.writeStatus();
    this.volumes?.release();
  }

  private policy(): 'Always' | 'OnFailure' | 'Never' {
    return this.spec.restartPolicy ?? 'Always';
  }

  /** Volumes, hosts file and env sources; retried (as CreateContainerConfigError) until they can be had. */
  private async prepare(): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.terminating) return false;
      try {
        await writePodHosts(this.ctx.api, join(this.podDir, 'hosts'), this.name, this.namespace);
        mkdirSync(join(this.podDir, 'empty'), { recursive: true });
        this.volumes?.release();
        this.volumes = await preparePodVolumes(this.ctx.api, this.pod, this.podDir);
        this.lookup = await envObjects(this.ctx.api, this.pod);
        return true;
      } catch (e) {
        // A refused or missing object, or the API server out of reach for a moment: both are retried.
        const message = (e as Error).message;
        const waiting = { waiting: { reason: 'CreateContainerConfigError', message } };
        for (const s of this.initialized ? this.main : this.init.slice(0, 1)) s.record.state = waiting;
        await this.writeStatus();
        await sleep(Math.min(5000, 500 * 2 ** attempt));
      }
    }
  }

  private async keepRunning(slot: Slot, policy = this.policy()) {
    for (;;) {
      const code = await this.runOnce(slot);
      if (this.terminating || (slot.sidecar && this.sidecarsStopping)) return;
      if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) return;
      await this.backoff(slot);
      if (this.terminating) return;
    }
  }

  private async backoff(slot: Slot): Promise<void> {
    const terminated = slot.record.state.terminated;
    slot.record.lastState = { terminated };
    slot.record.state = {
      waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting ${slot.spec.name}` },
    };
    slot.record.restartCount += 1;
    await this.writeStatus();
    await sleep(
      Math.min(
        this.ctx.restartBackoffMs * 2 ** (slot.record.restartCount - 1),
        this.ctx.restartBackoffMs * 10,
      ),
    );
  }

  /**
   * Runs the container once; resolves with its exit code once its status is written. A container whose env
   * or mounts cannot be resolved yet (a missing Secret key, an image with no mapped entrypoint) waits in
   * CreateContainerConfigError with the reason, and is retried with fresh objects, as the kubelet does.
   */
  private async runOnce(slot: Slot): Promise<number> {
    const c = slot.spec;
    const field = `container ${c.name}`;
    let argv: string[];
    let env: Record<string, string>;
    for (let attempt = 0; ; attempt++) {
      try {
        env = containerEnv(this.lookup, this.pod, c);
        const command = commandLine(c, env, this.ctx);
        const binds = containerBinds(
          c.volumeMounts ?? [],
          this.volumes!.byName,
          join(this.podDir, 'hosts'),
          join(this.podDir, 'empty'),
          field,
        );
        argv = mountedCommand(binds, command, c.workingDir ?? this.ctx.cwd);
        break;
      } catch (e) {
        if (!(e instanceof ContainerConfigError) && !(e instanceof PodConfigError)) throw e;
        slot.record.state = { waiting: { reason: 'CreateContainerConfigError', message: e.message } };
        await this.writeStatus();
        await sleep(Math.min(5000, 500 * 2 ** attempt));
        if (this.terminating) return 128;
        try {
          this.lookup = await envObjects(this.ctx.api, this.pod);
        } catch {
          // Still refused or unreachable: the next round says why in the container's status.
        }
      }
    }
    const startedAt = now();
    const log = openSync(this.logPath(c.name), 'a');
    const { KUBECONFIG: _dropped, ...base } = this.ctx.baseEnv;
    const processEnv = {
      ...base,
      HOSTNAME: this.name,
      KUBERNETES_SERVICE_HOST: this.ctx.apiHost,
      KUBERNETES_SERVICE_PORT: this.ctx.apiPort,
      KUBERNETES_SERVICE_PORT_HTTPS: this.ctx.apiPort,
      KUBERNETES_PORT: `tcp://${this.ctx.apiHost}:${this.ctx.apiPort}`,
      ...env,
    };
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: '/',
      env: processEnv,
      stdio: ['ignore', log, log],
      // Its own process group: stopping the container stops whatever it started too.
      detached: true,
    });
    closeSync(log);
    slot.child = child;
    slot.exited = new Promise<number>((resolve) => {
      child.once('error', (err) => {
        const fd = openSync(this.logPath(c.name), 'a');
        writeSync(fd, `${err.message}\n`);
        closeSync(fd);
        resolve(128);
      });
      child.once('exit', (code, signal) =>
        resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)),
      );
    });
    if (child.pid !== undefined) {
      slot.record.pid = child.pid;
      slot.record.state = { running: { startedAt } };
      slot.record.ready = false;
      slot.record.started = !c.startupProbe;
      this.startProbes(slot, processEnv);
      await this.writeStatus();
    }
    const code = await slot.exited;
    for (const t of slot.probeTimers) clearTimeout(t);
    slot.probeTimers.clear();
    slot.record.started = false;
    // A container ends with its main process: what that process left running goes too.
    if (child.pid !== undefined) await reapGroup(child.pid);
    slot.record.ready = false;
    slot.record.state = {
      terminated: {
        exitCode: code,
        reason: code === 0 ? 'Completed' : 'Error',
        startedAt,
        finishedAt: now(),
        ...(slot.record.pid !== undefined ? { containerID: `process://${slot.record.pid}` } : {}),
      },
    };
    if (!this.terminating) await this.writeStatus();
    return code;
  }

  /**
   * Startup probe first (until it passes, the container is not started and other probes wait), then
   * readiness (drives `ready`) and liveness (kills the container after failureThreshold misses). Regular
   * init containers have none, as in the API.
   */
  private startProbes(slot: Slot, env: NodeJS.ProcessEnv): void {
    if (!this.initialized && !slot.sidecar) return;
    const ports = slot.spec.ports ?? [];
    const child = slot.child;
    const loop = (probe: Probe, onResult: (ok: boolean, failures: number) => boolean) => {
      let failures = 0;
      const schedule = (ms: number) => {
        const timer = setTimeout(async () => {
          slot.probeTimers.delete(timer);
          if (slot.child !== child || child?.exitCode !== null || this.terminating) return;
          const ok = await probeOnce(probe, ports, env);
          failures = ok ? 0 : failures + 1;
          if (onResult(ok, failures)) schedule((probe.periodSeconds ?? 10) * 1000);
        }, ms);
        slot.probeTimers.add(timer);
      };
      schedule((probe.initialDelaySeconds ?? 0) * 1000);
    };
    const afterStart = () => {
      slot.onStarted?.();
      const readiness = slot.spec.readinessProbe;
      if (readiness) {
        loop(readiness, (ok, failures) => {
          const ready = ok ? true : failures >= (readiness.failureThreshold ?? 3) ? false : slot.record.ready;
          if (ready !== slot.record.ready && 'running' in slot.record.state) {
            slot.record.ready = ready;
            void this.writeStatus();
          }
          return true;
        });
      } else if (!slot.record.ready) {
        slot.record.ready = true;
        void this.writeStatus();
      }
      const liveness = slot.spec.livenessProbe;
      if (liveness) {
        loop(liveness, (_ok, failures) => {
          if (failures < (liveness.failureThreshold ?? 3)) return true;
          signalGroup(slot.child, 'SIGKILL');
          return false;
        });
      }
    };
    const startup = slot.spec.startupProbe;
    if (!startup) {
      afterStart();
      return;
    }
    loop(startup, (ok, failures) => {
      if (ok) {
        slot.record.started = true;
        afterStart();
        return false;
      }
      if (failures >= (startup.failureThreshold ?? 3)) {
        signalGroup(slot.child, 'SIGKILL');
        return false;
      }
      return true;
    });
  }

  /**
   * Stops every container: SIGTERM to each process group, SIGKILL after graceMs. With `deleteAfter` the
   * final status is written and the pod deleted with gracePeriodSeconds 0.
   */
  terminate(graceMs: number, deleteAfter: boolean): Promise<void> {
    if (this.termination) {
      // A second, shorter stop (the agent stopping during a pod's grace period) kills at once.
      if (graceMs === 0) for (const s of [...this.init, ...this.main]) signalGroup(s.child, 'SIGKILL');
      return this.termination;
    }
    this.terminating = true;
    this.markStopping();
    this.termination = this.stopContainers(graceMs, deleteAfter).catch((e) => {
      this.lastError = (e as Error).message;
    });
    return this.termination;
  }

  /** SIGTERM to each live container's process group, SIGKILL after graceMs; resolves when all are gone. */
  private async stopSlots(slots: Slot[], graceMs: number): Promise<void> {
    const live = slots.filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null);
    for (const s of live) signalGroup(s.child, 'SIGTERM');
    const timer = setTimeout(() => {
      for (const s of live) signalGroup(s.child, 'SIGKILL');
    }, graceMs);
    await Promise.all(live.map((s) => s.exited));
    clearTimeout(timer);
    // The leader is gone; what it started in the background may outlive it (until grace ran out, it had
    // SIGTERM only): the kubelet's runtime kills the whole container, so kill the rest of the group.
    await Promise.all(live.map((s) => reapGroup(s.child!.pid!)));
  }

  private async stopContainers(graceMs: number, deleteAfter: boolean): Promise<void> {
    await this.stopSlots([...this.init, ...this.main], graceMs);
    this.volumes?.release();
    if (!deleteAfter) return;
    if (this.phase !== 'Succeeded' && this.phase !== 'Failed') {
      this.phase = this.main.every(
        (s) => (s.record.state.terminated as { exitCode?: number } | undefined)?.exitCode === 0,
      )
        ? 'Succeeded'
        : 'Failed';
      await this.writeStatus(true);
    }
    await this.writing;
    const res = await this.ctx.api.request(
      'DELETE',
      `/api/v1/namespaces/${this.namespace}/pods/${this.name}`,
      {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: this.uid },
      },
    );
    if (res.status !== 200 && res.status !== 404 && res.status !== 409) {
      this.lastError = `deleting pod ${this.namespace}/${this.name}: ${res.status} ${JSON.stringify(res.body)}`;
    }
    rmSync(this.podDir, { recursive: true, force: true });
  }

  /** Running once a container has started (or is restarting), as the kubelet reports it. */
  private currentPhase(): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
    if (this.phase !== 'Pending' || !this.initialized) return this.phase;
    const ran = this.main.some(
      (s) => 'running' in s.record.state || 'terminated' in s.record.state || s.record.restartCount > 0,
    );
    return ran ? 'Running' : 'Pending';
  }

  /** Writes are serialised and each sends the status as it is when its turn comes. */
  private writeStatus(evenWhileTerminating = false): Promise<void> {
    this.writing = this.writing
      .then(async () => {
        if (this.terminating && !evenWhileTerminating) return;
        const status = podStatus(
          {
            phase: this.currentPhase(),
            startTime: this.startTime,
            initialized: this.initialized,
            init: this.init.map((s) => s.record),
            main: this.main.map((s) => s.record),
            scheduledAt: (this.pod.metadata as PodMeta).creationTimestamp ?? this.startTime,
          },
          this.conditions,
        );
        const res = await this.ctx.api.request(
          'PATCH',
          `/api/v1/namespaces/${this.namespace}/pods/${this.name}/status`,
          { metadata: { uid: this.uid }, status },
          mergePatch,
        );
        // 404 and 409: the pod is gone or replaced (a new uid) while the write was on its way.
        if (res.status !== 200 && res.status !== 404 && res.status !== 409)
          this.lastError = `status of ${this.namespace}/${this.name}: ${res.status} ${JSON.stringify(res.body)}`;
      })
      .catch((e) => {
        // Unreachable API server: the next change writes the whole status again.
        this.lastError = `status of ${this.namespace}/${this.name}: ${(e as Error).message}`;
      });
    return this.writing;
  }
}
