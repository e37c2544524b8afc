/**
 * Prometheus figures of a process's training jobs, fed from JobManager events: queue depth, jobs by
 * objective and final state, optimizer steps, and the current training throughput.
 */
import { JobState, type JobStatus, type TrainingEvent, TrainingObjective } from '@rlhf/proto';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Returns the JobManager `onEvent` hook that keeps the figures; `queued` reads the manager's queue depth. */
export function jobMetricsHook(
  registry: Registry,
  queued: () => number,
): (event: TrainingEvent, status: JobStatus) => void {
  new Gauge({
    name: 'rlhf_training_jobs_queued',
    help: 'Training jobs waiting for the training slot',
    registers: [registry],
    collect() {
      this.set(queued());
    },
  });
  const finished = new Counter({
    name: 'rlhf_training_jobs_total',
    help: 'Training jobs that ended, by objective and final state',
    labelNames: ['objective', 'state'],
    registers: [registry],
  });
  const steps = new Counter({
    name: 'rlhf_training_steps_total',
    help: 'Optimizer steps run, by objective',
    labelNames: ['objective'],
    registers: [registry],
  });
  const throughput = new Gauge({
    name: 'rlhf_training_tokens_per_second',
    help: 'Throughput of the running training job (0 when idle)',
    registers: [registry],
  });
  const name = (o: TrainingObjective): string =>
    (TrainingObjective[o] ?? 'UNKNOWN').replace('TRAINING_OBJECTIVE_', '').toLowerCase();
  return (event, status) => {
    const e = event.event;
    if (e?.$case === 'progress') {
      steps.inc({ objective: name(status.objective) });
      throughput.set(e.value.tokensPerSecond);
    } else if (e?.$case === 'finished') {
      finished.inc({
        objective: name(status.objective),
        state: (JobState[e.value.state] ?? '').replace('JOB_STATE_', '').toLowerCase(),
      });
      throughput.set(0);
    }
  };
}
