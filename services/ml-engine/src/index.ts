export { type BackwardOptions, backward } from './autodiff/backward.js';
export {
  type CheckedGraph,
  checkGradients,
  type GradCheckOptions,
  type GradCheckResult,
} from './autodiff/gradient-check.js';
export { type Grad, type VjpContext, type VjpRule, vjpRules } from './autodiff/vjp-rules.js';
export { type AtomicDirectoryOptions, writeDirectoryAtomically } from './checkpoint/atomic-directory.js';
export { f32ToBf16, f32ToF16 } from './checkpoint/half-float.js';
export {
  EXPORT_DTYPES,
  type ExportDtype,
  type ExportOptions,
  exportHfCheckpoint,
  hfConfigJson,
  importHfCheckpoint,
} from './checkpoint/hf-checkpoint.js';
export { readJsonFile } from './checkpoint/json-file.js';
export {
  type LoadedModelDir,
  loadModelDir,
  loadModelDirInfo,
  MODEL_DIR_FILES,
  type ModelDirContents,
  type ModelDirInfo,
  saveModelDir,
} from './checkpoint/model-dir.js';
export {
  INLINE_WEIGHTS_MAX_BYTES,
  MODEL_DATA_FILE,
  type ModelOnnxOptions,
} from './checkpoint/model-onnx-file.js';
export { checkTokenizerFits, specialTokensOf, withTokenizerIds } from './checkpoint/model-tokenizer.js';
export {
  type F32Tensor,
  type LoadedTensor,
  parseSafetensors,
  readSafetensors,
  type SafetensorsContents,
  type SafetensorsDtype,
  serializeSafetensors,
  writeSafetensors,
} from './checkpoint/safetensors.js';
export { DEFAULT_MAX_SHARD_SIZE, parseShardSize } from './checkpoint/safetensors-shards.js';
export {
  type DatasetFormat,
  detectDatasetFormat,
  loadDataset,
  parseDatasetBytes,
} from './data/dataset-file.js';
export {
  type BatchOptions,
  batchesPerEpoch,
  batchIndices,
  epochOrder,
  epochRng,
  locateStep,
} from './data/epoch-order.js';
export { loadJsonl, parseJsonlLines, type RowParser, readJsonl } from './data/jsonl.js';
export type { ChatMessage, RecordOptions, TextOrIds } from './data/record-fields.js';
export { describeRowShape, NEEDS as RECORD_NEEDS, type RecordPurpose } from './data/record-shape.js';
export {
  type PairRecord,
  type PromptRecord,
  parsePairRecord,
  parsePromptRecord,
  parseSftRecord,
  type SftRecord,
  textOrIdsToIds,
} from './data/records.js';
export * from './engine-error.js';
export {
  type Comparison,
  comparePairs,
  type Ranking,
  rankRoundRobin,
  rankTournament,
} from './judging/preference.js';
export { type ScoredItem, type ScoreInput, scoreResponses } from './judging/reward-scores.js';
export { type DpoLossType, type DpoOptions, defaultDpoOptions } from './losses/dpo.js';
export {
  architectureOf,
  defaultLlamaConfig,
  type HeadType,
  headDim,
  headTypeOf,
  type LlamaConfig,
  parameterCount,
  parseLlamaConfig,
} from './model/config.js';
export { buildInferenceGraph, buildInferenceModel } from './model/inference-graph.js';
export { checkWeights, initWeights, type WeightSpec, type Weights, weightSpecs } from './model/weights.js';
export { type Dim, divDims, formatShape, isStatic, mulDims, numel, type Shape } from './onnx/dims.js';
export { type GemmOptions, GraphBuilder, type Operand, type ScatterReduction } from './onnx/graph-builder.js';
export { type BuildOptions, DEFAULT_OPSET, type GraphOptions, type OpOptions } from './onnx/graph-core.js';
export type { Attrs, AttrValue, FloatAttr, GraphNode, Value } from './onnx/graph-types.js';
export { decodeModel, readModelFile } from './onnx/onnx-decode.js';
export { encodeModel } from './onnx/onnx-encode.js';
export {
  type AttributeProto,
  AttributeType,
  DataType,
  type GraphProto,
  irVersionForOpset,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './onnx/onnx-types.js';
export { shapeRules } from './onnx/shape-inference.js';
export {
  type DType,
  type FloatDType,
  isFloat,
  type TypedData,
  tensorFromData,
  tensorToData,
  typedArray,
} from './onnx/tensor-data.js';
export { AdamW, type AdamWOptions, type AdamWState } from './optim/adamw.js';
export { clipGradNorm, globalGradNorm } from './optim/clip-grad-norm.js';
export { GradAccumulator } from './optim/grad-accumulator.js';
export {
  type LrSchedule,
  lrSchedule,
  type ScheduleKind,
  type ScheduleOptions,
  warmupStepsOf,
} from './optim/lr-schedule.js';
export {
  adamWStateFromTensors,
  adamWStateToTensors,
  type StateTensors,
  sgdStateFromTensors,
  sgdStateToTensors,
} from './optim/optimizer-state.js';
export { DEFAULT_NO_DECAY, type NoDecay, type ParamMap } from './optim/param-map.js';
export { Sgd, type SgdOptions, type SgdState } from './optim/sgd.js';
export * from './random/rng.js';
export {
  defaultThreads,
  inferenceSessionOptions,
  type ModelRunner,
  OrtSession,
  type OutputTensor,
  type SessionOptions,
  type TensorValue,
} from './runtime/ort-session.js';
export {
  defaultSmallRunMflops,
  runFlops,
  SplitSession,
  smallRunMflops,
} from './runtime/split-session.js';
export {
  DecodeLoop,
  type DecodeLoopOptions,
  ROW_LOOP_SERVER_TRIPS,
  type StepInfo,
} from './sampling/decode-loop.js';
export {
  cacheNames,
  type FinishReason,
  type GenerateOptions,
  type GenerateRequest,
  generate,
  type RequestOptions,
  type RowDefaults,
  rowSeed,
  type Sample,
} from './sampling/generate.js';
export {
  checkSampling,
  type Generation,
  generateTexts,
  type PromptInput,
  policySession,
  promptRows,
  type TextGenerationOptions,
} from './sampling/generate-texts.js';
export { ROW_LOOP_MAX_PARAMETERS, RowLoop, rowLoopFor, rowLoopMode } from './sampling/row-loop.js';
export { defaultSamplingParams, type SamplingParams, sampleToken } from './sampling/sample-token.js';
export { MAX_TOP_LOGPROBS, type TokenLogprob, topLogprobs } from './sampling/top-logprobs.js';
export {
  type BpeTrainOptions,
  type LearnedBpe,
  learnByteLevelBpe,
  trainBpe,
} from './tokenizer/bpe-trainer.js';
export {
  chatPrompt,
  chatRenderer,
  promptInputOf,
  readChatTemplate,
  renderChatPrompt,
} from './tokenizer/chat-template.js';
export {
  chatPromptIds,
  promptIds,
  promptText,
  responseIds,
  specialPrefixLength,
  textPromptIds,
} from './tokenizer/prompt-ids.js';
export { DEFAULT_SPECIAL_TOKENS, type SpecialTokens } from './tokenizer/special-tokens.js';
export {
  type DecodeIdsOptions,
  type EncodeTextOptions,
  type SpecialTokenNames,
  type Tokenizer,
  type TokenizerSourceOptions,
  tokenizerFromJson,
} from './tokenizer/tokenizer.js';
export { loadTokenizer, tokenizerConfigJson, writeTokenizerFiles } from './tokenizer/tokenizer-files.js';
export type { TokenizerJson } from './tokenizer/tokenizer-json.js';
export { type Example, encodePair, encodeSft, type PairExample } from './train/examples.js';
export { sequenceLogps } from './train/logps.js';
export { answerIds, preferenceExample, preferencePrompt } from './train/preference-format.js';
export { type RunTrainingArgs, type RunTrainingResult, runTraining } from './train/run-training.js';
export {
  defaultTrainOptions,
  type StepReport,
  type TrainerState,
  type TrainObjective,
  type TrainOptions,
  trainModel,
} from './train/trainer.js';
export { buildTrainingGraph, gradName, type Objective } from './train/training-graph.js';
