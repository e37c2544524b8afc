/**
 * A fake node for the fake API server: a Job controller (pods for Jobs, retries up to backoffLimit,
 * completions/parallelism, Indexed mode, activeDeadlineSeconds, Job status and conditions) and a kubelet
 * (each pod's first container as a local process; see fake-kubelet/pod-runner.ts). It works through the
 * server's in-process client, so its writes appear in `server.events` but not in the request counts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FakeApiServer, InProcessClient } from './fake-api-server/index.js';
import { JobController } from './fake-kubelet/job-controller.js';
import { PodRunner } from './fake-kubelet/pod-runner.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The repo's CLI, run the way bin/rlhf.mjs runs it (through tsx). */
export const rlhfCli = [process.execPath, join(repoRoot, 'services/cli/bin/rlhf.mjs')];

export interface FakeKubeletOptions {
  /** Working directory of every process. Default: the repo root. */
  cwd?: string;
  /** Entrypoints by image (`ghcr.io/x/rlhf:1`, `ghcr.io/x/rlhf` or `rlhf`) for containers without `command`. */
  entrypoints?: Record<string, string[]>;
  /** Entrypoint for images not in `entrypoints`. Default: the rlhf CLI (the project's one image). */
  defaultEntrypoint?: string[];
  /** Replacements for a command's first word, on top of the default `rlhf` -> the repo CLI. */
  commands?: Record<string, string[]>;
  /** Environment every process starts from, under the container's own env. Default: this process's. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Where pod logs go. Default: a fresh temporary directory. */
  logDir?: string;
  /** Delay before a failed Job pod is replaced (the real controller backs off 10 s, 20 s, ...). Default 0. */
  backoffMs?: number;
  /** Time between SIGTERM and SIGKILL when a pod is deleted. Default 2000 ms. */
  killGraceMs?: number;
  nodeName?: string;
}

export class FakeKubelet {
  readonly logDir: string;
  private readonly api: InProcessClient;
  private readonly pods: PodRunner;
  private readonly jobs: JobController;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly server: FakeApiServer,
    opts: FakeKubeletOptions = {},
  ) {
    this.api = server.client.as('fake-kubelet');
    this.logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), 'fake-kubelet-'));
    const nodeName = opts.nodeName ?? 'fake-node';
    this.pods = new PodRunner(this.api, {
      cwd: opts.cwd ?? repoRoot,
      baseEnv: opts.baseEnv ?? process.env,
      logDir: this.logDir,
      nodeName,
      killGraceMs: opts.killGraceMs ?? 2000,
      entrypoints: opts.entrypoints ?? {},
      defaultEntrypoint: opts.defaultEntrypoint ?? rlhfCli,
      commands: { rlhf: rlhfCli, ...opts.commands },
    });
    this.jobs = new JobController(server.client.as('job-controller'), {
      backoffMs: opts.backoffMs ?? 0,
      nodeName,
    });
  }

  /** Starts watching Jobs and Pods (existing ones included) and serving pod logs. */
  start(): this {
    this.server.setPodLogSource((ns, pod, container) => this.pods.readLog(ns, pod, container));
    this.unsubscribe.push(
      this.api.watch('pods', (type, pod) => {
        this.pods.onPod(type, pod);
        this.jobs.onPod(pod);
      }),
      this.api.watch('jobs.batch', (type, job) => this.jobs.onJob(type, job)),
    );
    for (const pod of this.api.list('pods')) this.pods.onPod('ADDED', pod);
    for (const job of this.api.list('jobs.batch')) this.jobs.onJob('ADDED', job);
    return this;
  }

  /** Stops reacting, kills every process and waits for them. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.jobs.stop();
    this.server.setPodLogSource(undefined);
    await this.pods.stopAll();
  }

  /** Pods whose process is alive. */
  runningPods(): { namespace: string; name: string; pid: number }[] {
    return this.pods.running();
  }

  logPath(namespace: string, pod: string, container?: string): string {
    return this.pods.logPath(namespace, pod, container);
  }
}
