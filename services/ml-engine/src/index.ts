export { type AtomicDirectoryOptions, writeDirectoryAtomically } from './checkpoint/atomic-directory.js';
export { exportHfCheckpoint, hfConfigJson, importHfCheckpoint } from './checkpoint/hf-checkpoint.js';
export {
  type LoadedModelDir,
  loadModelDir,
  MODEL_DIR_FILES,
  type ModelDirContents,
  saveModelDir,
} from './checkpoint/model-dir.js';
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
export { OrtSession } from './runtime/ort-session.js';
export { type FinishReason, type GenerateOptions, generate, type Sample } from './sampling/generate.js';
export {
  checkSampling,
  type Generation,
  generateTexts,
  type PromptInput,
  policySession,
  type TextGenerationOptions,
} from './sampling/generate-texts.js';
export { defaultSamplingParams, type SamplingParams, sampleToken } from './sampling/sample-token.js';
export {
  type BpeTrainOptions,
  type LearnedBpe,
  learnByteLevelBpe,
  trainBpe,
} from './tokenizer/bpe-trainer.js';
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
