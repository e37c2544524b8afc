/**
 * The TrainJob half of TrainJobClusterPort over a real API server (trainer.kubeflow.org/v1alpha1 through
 * client-node's CustomObjectsApi). An iteration's TrainJobs are listed by label on each pass of its train
 * stage (at most a few: one per attempt), so the controller keeps no informer for them and needs no
 * Kubeflow CRD installed unless a run trains on a TrainJob. A create that finds the object is done, and a
 * delete that does not find it.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { labels, managedByValue } from '../resources.js';
import { trainJobApiVersion, trainJobPlural } from './trainjob-manifest.js';

const [trainJobGroup, trainJobVersion] = trainJobApiVersion.split('/') as [string, string];
const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

export class KubeTrainJobCluster {
  constructor(
    private readonly custom: CustomObjectsApi,
    /** Counts API requests by verb and resource, as KubeCluster does. */
    private readonly count: (what: string) => void = () => {},
  ) {}

  async trainJobsOf(namespace: string, run: string, iteration: number): Promise<Record<string, unknown>[]> {
    this.count('list trainjobs');
    const list = (await this.custom.listNamespacedCustomObject({
      group: trainJobGroup,
      version: trainJobVersion,
      namespace,
      plural: trainJobPlural,
      labelSelector: `${labels.managedBy}=${managedByValue},${labels.run}=${run},${labels.iteration}=${iteration}`,
    })) as { items?: Record<string, unknown>[] };
    return list.items ?? [];
  }

  async createTrainJob(obj: Record<string, unknown>): Promise<void> {
    this.count('create trainjobs');
    const namespace = (obj.metadata as { namespace: string }).namespace;
    try {
      await this.custom.createNamespacedCustomObject({
        group: trainJobGroup,
        version: trainJobVersion,
        namespace,
        plural: trainJobPlural,
        body: obj,
      });
    } catch (err) {
      if (codeOf(err) !== 409) throw err;
    }
  }

  async deleteTrainJob(namespace: string, name: string): Promise<void> {
    this.count('delete trainjobs');
    try {
      await this.custom.deleteNamespacedCustomObject({
        group: trainJobGroup,
        version: trainJobVersion,
        namespace,
        plural: trainJobPlural,
        name,
        propagationPolicy: 'Background',
      });
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
    }
  }
}
