/**
 * The lifecycle of the vLLM servers of a run, one reconcile pass at a time: the server of the unit that
 * runs now exists and is ready before its stage Job starts (the Job gets its endpoint), and every other
 * server of the run is deleted, so a server lives exactly while its sampling unit runs. Like reconcile, a
 * pass never waits: it creates what is missing and says "waiting" until the Deployment's pods are ready.
 */
import type { V1Deployment, V1EnvVar, V1OwnerReference, V1Service } from '@kubernetes/client-node';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import type { StageUnit } from '@rlhf/workflow';
import type { JobConfig } from '../stage-job.js';
import {
  usesVllm,
  type VllmConfig,
  vllmDeployment,
  vllmEndpointEnv,
  vllmServerName,
  vllmService,
} from './vllm-manifests.js';

/** What the vLLM servers read and write on the cluster. */
export interface VllmClusterPort {
  /** The run's vLLM Deployments (by label). */
  deploymentsOf(namespace: string, run: string): Promise<V1Deployment[]>;
  /** The run's vLLM Services (by label). */
  servicesOf(namespace: string, run: string): Promise<V1Service[]>;
  /** Creates; an object that exists already counts as created (names are deterministic). */
  createDeployment(d: V1Deployment): Promise<void>;
  createService(s: V1Service): Promise<void>;
  /** Deletes; an object already gone counts as deleted. */
  deleteDeployment(namespace: string, name: string): Promise<void>;
  deleteService(namespace: string, name: string): Promise<void>;
}

export type ServerState =
  /** The unit does not sample through vLLM. */
  { state: 'none' } | { state: 'waiting'; message: string } | { state: 'ready'; env: V1EnvVar[] };

/** Ready when every wanted replica passes its readiness probe on /health. */
export function deploymentReady(d: V1Deployment): boolean {
  const want = d.spec?.replicas ?? 1;
  const gen = d.metadata?.generation;
  const seen = d.status?.observedGeneration;
  const current = gen === undefined || seen === undefined || seen >= gen;
  return current && (d.status?.readyReplicas ?? 0) >= want && (d.status?.updatedReplicas ?? want) >= want;
}

export class VllmServers {
  constructor(
    private readonly cluster: VllmClusterPort,
    private readonly vllm: VllmConfig,
    private readonly job: JobConfig,
  ) {}

  /**
   * Brings the server of `unit` up (when it samples through vLLM and its policy is known) and removes
   * the run's other servers. `unit` undefined (the run ended or failed): removes them all.
   */
  async reconcile(o: {
    run: { name: string; namespace: string; spec: RlhfRunSpec };
    unit: StageUnit | undefined;
    /** The policy the unit samples from; undefined while it is not known yet. */
    policy: string | undefined;
    owner: V1OwnerReference | undefined;
  }): Promise<ServerState> {
    const { run } = o;
    // A run that samples on another engine never had servers: no API calls for it.
    if (run.spec.engines.generate.type !== 'vllm') return { state: 'none' };
    const wanted = o.unit && usesVllm(run.spec, o.unit) ? o.unit : undefined;
    const keep = wanted ? vllmServerName(run.name, wanted) : undefined;
    const [deployments, services] = await Promise.all([
      this.cluster.deploymentsOf(run.namespace, run.name),
      this.cluster.servicesOf(run.namespace, run.name),
    ]);
    for (const d of deployments)
      if (d.metadata?.name !== keep && !d.metadata?.deletionTimestamp)
        await this.cluster.deleteDeployment(run.namespace, d.metadata?.name as string);
    for (const s of services)
      if (s.metadata?.name !== keep && !s.metadata?.deletionTimestamp)
        await this.cluster.deleteService(run.namespace, s.metadata?.name as string);
    if (!wanted || !keep) return { state: 'none' };
    if (o.policy === undefined || o.owner === undefined)
      return { state: 'waiting', message: `waiting for the policy of ${wanted.stage} to serve it on vLLM` };

    const input = { run, unit: wanted, policy: o.policy, owner: o.owner, vllm: this.vllm, job: this.job };
    const existing = deployments.find((d) => d.metadata?.name === keep);
    if (!existing) await this.cluster.createDeployment(vllmDeployment(input));
    if (!services.some((s) => s.metadata?.name === keep))
      await this.cluster.createService(vllmService(input));
    if (!existing || !deploymentReady(existing)) {
      const ready = existing?.status?.readyReplicas ?? 0;
      return {
        state: 'waiting',
        message: `vLLM server ${keep} starting (${ready}/${existing?.spec?.replicas ?? '-'} ready)`,
      };
    }
    return { state: 'ready', env: vllmEndpointEnv(run, wanted, this.vllm.port) };
  }
}
