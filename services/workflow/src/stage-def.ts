/**
 * The shape of one entry of a stage table. A driver (the NATS orchestrator, an in-process runner, the
 * controller's one-Job-per-unit mode) only iterates a table: it asks each entry whether it runs for the spec,
 * derives its inputs from the spec and the earlier results (`resolve`), runs the stage's function, and keeps
 * the result under the entry's record. Everything else an entry says (ports, parameters, services,
 * placement) is what the controller, the docs and `rlhf stage` read.
 */
import type { EngineType, PlacementGroup, RlhfRunSpec } from '@rlhf/run-spec';
import type { RunRef } from './run-layout.js';
import type { InputsOf, ResultsOf } from './stage-results.js';

export type Phase = 'setup' | 'iteration';

/** The model services whose workers execute stage shards, in the order a pod starts them. */
export const serviceNames = ['policy-generator', 'dpo-trainer', 'reward-model', 'preference-model'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** What an input or output is: a model directory, a JSONL dataset, a list of JSONL shards, or figures. */
export type ArtifactKind = 'model' | 'dataset' | 'shards' | 'figures';

export interface Port {
  name: string;
  kind: ArtifactKind;
}

/** What `resolve` sees: the spec, the run, and the results so far of setup (0) and each iteration. */
export interface ResultsView<IO> {
  spec: RlhfRunSpec;
  run: RunRef;
  /** The iteration being resolved (0 for setup). */
  iteration: number;
  at(iteration: number): Partial<ResultsOf<IO>>;
}

export interface StageDef<IO, N extends keyof IO & string = keyof IO & string> {
  name: N;
  phase: Phase;
  /** The cluster unit (one Job) the stage runs in: `setup`, or the iteration stage's own. */
  unit: string;
  /** Its KV record: `<namespace>.<run>.<iteration>.<record>` (see stageKey). */
  record: string;
  /** Whether the stage runs for this spec; a stage that does not run has no record and no result. */
  enabled(spec: RlhfRunSpec): boolean;
  /** Why it does not run, when the person at the terminal should be told (offline pairs, say). */
  notNeeded?(spec: RlhfRunSpec): string;
  /** The services whose workers execute its shards; none when the driver runs it itself. */
  services(spec: RlhfRunSpec): readonly ServiceName[];
  /**
   * The engine that executes it: builtin (the services above, ONNX Runtime on CPU) or the engine the spec
   * hands it to (an OpenAI-compatible server or vLLM for sampling, a Kubeflow TrainJob for training).
   */
  engine(spec: RlhfRunSpec): EngineType;
  /** Where its unit's pods go on a cluster. */
  placement(spec: RlhfRunSpec): PlacementGroup;
  inputs: readonly Port[];
  outputs: readonly Port[];
  /** The run spec fields it reads. */
  params: readonly string[];
  /** Its inputs, from the spec and the results of the stages before it. */
  resolve(view: ResultsView<IO>): InputsOf<IO>[N];
}

/** A table: every entry typed by its own name, in run order (setup first, then one iteration's stages). */
export type StageTable<IO> = ReadonlyArray<{ [N in keyof IO & string]: StageDef<IO, N> }[keyof IO & string]>;

/** The result of an earlier stage; the table's order guarantees it, so its absence is a bug in the table. */
export function earlier<T>(value: T | undefined, stage: string, needed: string): T {
  if (value === undefined)
    throw new Error(
      `stage ${needed} reads the result of ${stage}, which does not run before it for this spec`,
    );
  return value;
}
