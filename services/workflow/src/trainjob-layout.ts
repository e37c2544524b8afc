/**
 * Where a train stage handed to a Kubeflow TrainJob (spec.engines.train.type trainjob) keeps its files: a
 * directory per run and iteration on the run's first writable volume (spec.placement.volumes), which the
 * stage pods and the TrainJob's pods both mount at the same path. The prepare step writes the policy as a
 * Hugging Face checkpoint and the pairs in TRL's format there, `trl dpo` saves its checkpoint there, and
 * the import step reads it back. The controller derives the TrainJob's paths and the stage pods read them
 * from the same functions, so the two never disagree.
 */
import type { RlhfRunSpec, RunVolume } from '@rlhf/run-spec';

/** The stage Job variable naming the iteration's TrainJob directory (set by the controller). */
export const trainJobDirEnv = 'RLHF_TRAINJOB_DIR';

/** The files of one iteration's TrainJob, as absolute paths in every pod that mounts the volume. */
export interface TrainJobPaths {
  /** The iteration's directory. */
  dir: string;
  /** The policy the iteration starts from, as the platform's model directory (pulled from the store). */
  policy: string;
  /** The same policy as a Hugging Face checkpoint (`trl dpo --model_name_or_path`). */
  checkpoint: string;
  /** Holds train.jsonl, the pairs in TRL's preference format (`--dataset_name`). */
  pairs: string;
  /** Where `trl dpo` saves the trained checkpoint (`--output_dir`). */
  output: string;
}

/** The volume TrainJob files go on: the run's first writable volume, if any. */
export function trainJobVolume(spec: Pick<RlhfRunSpec, 'placement'>): RunVolume | undefined {
  return (spec.placement.volumes ?? []).find((v) => !v.readOnly);
}

export function trainJobPaths(dir: string): TrainJobPaths {
  return {
    dir,
    policy: `${dir}/policy`,
    checkpoint: `${dir}/policy-hf`,
    pairs: `${dir}/pairs`,
    output: `${dir}/output`,
  };
}

/** `<mountPath>/rlhf-trainjob/<namespace>/<run>/iteration-<t>`: one directory per run and iteration. */
export function trainJobDir(
  volume: Pick<RunVolume, 'mountPath'>,
  run: { namespace: string; name: string },
  iteration: number,
): string {
  const root = volume.mountPath.replace(/\/+$/, '');
  return `${root}/rlhf-trainjob/${run.namespace}/${run.name}/iteration-${iteration}`;
}
