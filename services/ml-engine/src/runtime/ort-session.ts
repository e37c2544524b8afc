/**
 * A thin wrapper over onnxruntime-node: a session from ModelProto bytes with the options training wants,
 * runs with named typed-array feeds, typed outputs back. Nothing else in the engine imports ORT directly,
 * so session options are decided once, here.
 */
import { availableParallelism } from 'node:os';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { invalidInput } from '../engine-error.js';
import { encodeModel } from '../onnx/onnx-encode.js';
import { DataType, type ModelProto } from '../onnx/onnx-types.js';
import type { DType, TypedData } from '../onnx/tensor-data.js';

export interface TensorValue {
  data: TypedData;
  dims: readonly number[];
}

export interface OutputTensor extends TensorValue {
  dtype: DType;
}

export interface SessionOptions {
  /** Intra-op threads; default: RLHF_ORT_THREADS, else every core the process may use (see defaultThreads). */
  threads?: number;
  /**
   * ORT graph optimisation level. Default 'all' (fusions such as Transpose+MatMul into FusedMatMul), but
   * 'basic' for a ModelProto with float64 inputs or weights: ORT 1.30 fuses x * sigmoid(x) into
   * QuickGelu, which has a float32 kernel only, even in float64 graphs.
   */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Where ORT writes the graph it actually runs, after its optimisations (for inspection). */
  optimizedModelPath?: string;
  /** ORT log severity: 0 verbose .. 4 fatal; default 3 (errors only). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /**
   * Whether idle intra-op threads spin waiting for work (ORT's default, true) or sleep. Spinning suits a
   * process that mostly runs the graph (training: the medium model's MFU was 63% spinning, 53% not, in one
   * run); a server that samples in TypeScript and answers calls between runs wants false, or the spinning
   * threads take the cores that work needs (see docs/BENCHMARKS.md, sessions and threads).
   */
  spinning?: boolean;
  /**
   * The input shapes change from run to run (decoding with a growing KV cache, batches of varying size and
   * length): ORT's memory pattern, planned for each distinct set of input shapes and kept for the session's
   * life, is not used, which makes such runs cheaper (a small model's decode step 10-25% less CPU) and keeps a
   * long-lived server's memory from growing with every new shape. Outputs are the same bit for bit.
   */
  shapesVary?: boolean;
  /**
   * The directory of the model.onnx whose bytes are passed, where ORT finds the files its external-data
   * tensors name (model.onnx.data). ORT resolves them against the model's path, which a model given as bytes
   * does not have; without this a model with external data fails to load.
   */
  externalDataDir?: string;
}

/** A session for inference on inputs of changing shapes (generation, scoring, judging). */
export const inferenceSessionOptions: SessionOptions = { shapesVary: true };

/**
 * Intra-op threads of a session when the caller does not say: `RLHF_ORT_THREADS` when set, else every core
 * this process may run on. Node counts the CPUs the process is pinned to, not a container's CPU quota, so a
 * pod limited to 2 CPUs on a 64-core node would start 64 threads: set the variable to the pod's CPU limit.
 */
export function defaultThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.RLHF_ORT_THREADS;
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw invalidInput(
      `must be a whole number of threads from 1 to 1024, got "${raw}"`,
      'RLHF_ORT_THREADS',
      "set it to the CPUs this process may use (a pod's CPU limit), or unset it to use every core",
    );
  return n;
}

const dtypeOf = (data: TypedData): DType => {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  return 'bool';
};

const ortTypes: Record<string, DType> = {
  float32: 'float32',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
};

function defaultLevel(model: ModelProto): 'all' | 'basic' {
  const { input, initializer } = model.graph;
  const float64 =
    input.some((v) => v.type?.elemType === DataType.DOUBLE) ||
    initializer.some((t) => t.dataType === DataType.DOUBLE);
  return float64 ? 'basic' : 'all';
}

/**
 * What samplers and scorers need of a session: its names, runs and release (an OrtSession, or a stand-in).
 */
export interface ModelRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph; returns every output, or only those named in `outputs`. */
  run(
    feeds: Readonly<Record<string, TensorValue>>,
    outputs?: readonly string[],
  ): Promise<Record<string, OutputTensor>>;
  dispose(): Promise<void>;
}

/** ORT's options for a session of `model`. */
export function ortSessionOptions(
  model: ModelProto | Uint8Array,
  options: SessionOptions = {},
): InferenceSession.SessionOptions {
  const opts: InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel:
      options.optimization ?? (model instanceof Uint8Array ? 'all' : defaultLevel(model)),
    // One op at a time, each using every core: the graphs are chains of large MatMuls.
    executionMode: 'sequential',
    intraOpNumThreads: options.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    enableCpuMemArena: true,
    enableMemPattern: options.shapesVary !== true,
    logSeverityLevel: options.logSeverity ?? 3,
  };
  const session: Record<string, unknown> = {};
  if (options.spinning === false) session.intra_op = { allow_spinning: '0' };
  if (options.externalDataDir !== undefined)
    session.model_external_initializers_file_folder_path = options.externalDataDir;
  if (Object.keys(session).length) opts.extra = { session };
  if (options.optimizedModelPath !== undefined) opts.optimizedModelFilePath = options.optimizedModelPath;
  return opts;
}

/** Throws unless `feeds` holds every input in `inputNames`, each with as many values as its dims say. */
export function checkFeeds(
  inputNames: readonly string[],
  feeds: Readonly<Record<string, TensorValue>>,
): void {
  const missing = inputNames.filter((n) => !(n in feeds));
  if (missing.length)
    throw new Error(`missing feeds: ${missing.join(', ')} (the graph's inputs are ${inputNames.join(', ')})`);
  for (const [name, t] of Object.entries(feeds)) {
    const numel = t.dims.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new Error(`feed ${name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
    }
  }
}

export class OrtSession implements ModelRunner {
  private constructor(private readonly session: InferenceSession) {}

  /** Creates a session from a ModelProto or its serialized bytes. */
  static async create(model: ModelProto | Uint8Array, options: SessionOptions = {}): Promise<OrtSession> {
    const bytes = model instanceof Uint8Array ? model : encodeModel(model);
    return new OrtSession(await InferenceSession.create(bytes, ortSessionOptions(model, options)));
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the graph; returns every output, or only those named in `outputs`. */
  async run(
    feeds: Readonly<Record<string, TensorValue>>,
    outputs?: readonly string[],
  ): Promise<Record<string, OutputTensor>> {
    checkFeeds(this.session.inputNames, feeds);
    const ortFeeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(feeds))
      ortFeeds[name] = new Tensor(dtypeOf(t.data), t.data, t.dims);
    const result = outputs
      ? await this.session.run(ortFeeds, [...outputs])
      : await this.session.run(ortFeeds);
    const out: Record<string, OutputTensor> = {};
    for (const [name, value] of Object.entries(result)) {
      const tensor = value as Tensor;
      const dtype = ortTypes[tensor.type];
      if (dtype === undefined) throw new Error(`output ${name} has unsupported type ${tensor.type}`);
      out[name] = { data: tensor.data as TypedData, dims: [...tensor.dims], dtype };
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
