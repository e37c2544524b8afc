/**
 * The bounds a service puts on training jobs that callers (gRPC clients, stage work on NATS) ask for: set
 * with the `--train-max-*` flags of `rlhf serve`, defaults here. Anything above a bound is answered
 * RESOURCE_EXHAUSTED naming the bound and the flag that raises it.
 */
export interface TrainingBounds {
  /** Optimizer steps a job may take (max_steps, or epochs over the data). Flag --train-max-steps. */
  maxSteps: number;
  /** Passes over the data a job may ask for. Flag --train-max-epochs. */
  maxEpochs: number;
  /** Largest training or held-out dataset, in bytes. Flag --train-max-dataset-mb. */
  maxDatasetBytes: number;
  /** Jobs that may wait behind the running one. Flag --train-max-queued. */
  maxQueued: number;
}

export const defaultTrainingBounds: TrainingBounds = {
  maxSteps: 1_000_000,
  // The RLHFRun schema's bound on epochs, so every run a cluster accepts fits a default server.
  maxEpochs: 1000,
  maxDatasetBytes: 1024 * 1024 * 1024,
  maxQueued: 16,
};

/** The flag that sets each bound, for error texts. */
export const trainingBoundFlags: Record<keyof TrainingBounds, string> = {
  maxSteps: '--train-max-steps',
  maxEpochs: '--train-max-epochs',
  maxDatasetBytes: '--train-max-dataset-mb',
  maxQueued: '--train-max-queued',
};
