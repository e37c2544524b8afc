/**
 * Which engine runs each stage, and the rule that follows: GPUs go only where a GPU engine runs. The
 * built-in engine is ONNX Runtime on the CPU, so a built-in stage asking for GPUs would hold them idle (or
 * wait unscheduled on a cluster without them); that is refused here, before any pod exists. The same
 * rules are CEL rules of the CRD (`engineCelRules`), so `kubectl apply` refuses what `rlhf validate` does.
 */
import type { EngineType, RlhfRunSpec } from './types.js';
import type { FieldProblem } from './validate.js';

type Group = 'generate' | 'judge' | 'train' | 'evaluate';

/** The engine section that drives a placement group: evaluate samples, so it follows generate's engine. */
const engineOfGroup = { generate: 'generate', evaluate: 'generate', judge: 'judge', train: 'train' } as const;

/** Engines that run on GPUs the run's placement asks for (the platform starts them on that placement). */
const gpuEngines: ReadonlySet<EngineType> = new Set(['vllm', 'trainjob']);

export function groupEngine(spec: RlhfRunSpec, group: Group): EngineType {
  return spec.engines[engineOfGroup[group]].type;
}

function gpuRefusal(spec: RlhfRunSpec, group: Group): string {
  const section = engineOfGroup[group];
  const engine = groupEngine(spec, group);
  const gpus = spec.placement[group].gpus;
  const where =
    engine === 'openai'
      ? `the ${group} stage is handed to the OpenAI-compatible server at spec.engines.${section}.openai.url, so its pod needs none`
      : `the ${group} stage runs on the built-in engine, which computes on the CPU (ONNX Runtime) and would hold ${gpus === 1 ? 'it' : 'them'} idle`;
  const gpuEngine =
    section === 'generate'
      ? 'spec.engines.generate.type: vllm'
      : section === 'train'
        ? 'spec.engines.train.type: trainjob'
        : null;
  const fix = gpuEngine ? `set gpus: 0, or run the stage on a GPU engine (${gpuEngine})` : 'set gpus: 0';
  return `asks for ${gpus} GPU${gpus === 1 ? '' : 's'}, but ${where}: ${fix}`;
}

export function engineProblems(spec: RlhfRunSpec): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const section of ['generate', 'judge'] as const) {
    const e = spec.engines[section];
    if (e.type === 'openai' && !e.openai)
      out.push({
        path: `spec.engines.${section}.openai`,
        message:
          section === 'generate'
            ? "is required with type openai: the server's url (up to /v1), and model unless the server loads policies by URI"
            : "is required with type openai: the server's url (up to /v1) and the model it serves",
      });
    if (e.type !== 'openai' && e.openai)
      out.push({
        path: `spec.engines.${section}.openai`,
        message: `is set but spec.engines.${section}.type is ${e.type}: set type: openai, or remove it`,
      });
  }
  if (spec.engines.judge.type === 'openai' && spec.judge.type !== 'reward')
    out.push({
      path: 'spec.engines.judge.type',
      message: `openai scores each response with a served reward model; judge type ${spec.judge.type} runs built in: use type builtin, or judge.type reward`,
    });
  if (spec.engines.judge.type === 'openai' && spec.judge.type === 'reward')
    out.push({
      path: 'spec.engines.judge.type',
      message:
        "openai: the judge workers score with the reward-model service only (an OpenAI-compatible server has no standard scoring route): use type builtin, and run the reward model on the run's judge placement",
    });
  if (spec.engines.train.type === 'trainjob') out.push(...trainJobProblems(spec));
  for (const group of ['generate', 'judge', 'train', 'evaluate'] as const) {
    if (spec.placement[group].gpus > 0 && !gpuEngines.has(groupEngine(spec, group)))
      out.push({ path: `spec.placement.${group}.gpus`, message: gpuRefusal(spec, group) });
  }
  return out;
}

/**
 * What `trl dpo` cannot train the way spec.dpo asks (the mapping of the TrainJob's command line explains
 * each), refused when the run is validated rather than when its first TrainJob is built.
 */
function trainJobProblems(spec: RlhfRunSpec): FieldProblem[] {
  const out: FieldProblem[] = [];
  const d = spec.dpo;
  // The prepare step, the TrainJob and the import step pass the policy, the pairs and the checkpoint
  // through a volume all their pods mount.
  if (!(spec.placement.volumes ?? []).some((v) => !v.readOnly))
    out.push({
      path: 'spec.placement.volumes',
      message:
        "engines.train trainjob needs a writable PersistentVolumeClaim shared by the stage pods and the TrainJob's pods (the policy checkpoint, the pairs and TRL's output go there): add one, e.g. {name: work, claimName: rlhf-work, mountPath: /work}",
    });
  if (spec.reference === 'initial' && spec.iterations > 1)
    out.push({
      path: 'spec.reference',
      message:
        'initial: trl dpo takes its reference model from the policy each iteration starts from, which is pi_0 only in iteration 1: set spec.reference: previous with engines.train trainjob, or train builtin',
    });
  if (d.labelSmoothing > 0)
    out.push({
      path: 'spec.dpo.labelSmoothing',
      message: `${d.labelSmoothing}: TRL's sigmoid DPO loss has no label smoothing: set 0 with engines.train trainjob`,
    });
  if (d.warmupRatio >= 1)
    out.push({
      path: 'spec.dpo.warmupRatio',
      message: 'transformers reads a warmup of 1 or more as a step count: use a ratio below 1',
    });
  // One training process per GPU of each node (one on a CPU node), as the TrainJob runs them.
  const processes = spec.engines.train.trainJob.numNodes * Math.max(1, spec.placement.train.gpus);
  const split = d.gradAccum * processes;
  if (d.batchSize % split !== 0)
    out.push({
      path: 'spec.dpo.batchSize',
      message: `${d.batchSize} pairs do not split into ${d.gradAccum} micro-batches on each of ${processes} training processes: use a multiple of ${split}`,
    });
  return out;
}

/** `has(a.b.c)` for every step of a path, so a rule holds on objects before defaulting fills them. */
function present(path: string): string {
  const parts = path.split('.');
  const steps: string[] = [];
  for (let i = 2; i <= parts.length; i++) steps.push(`has(${parts.slice(0, i).join('.')})`);
  return steps.join(' && ');
}

function gpuRule(group: Group): { rule: string; message: string } {
  const gpus = `self.placement.${group}.gpus`;
  const section = engineOfGroup[group];
  const type = `self.engines.${section}.type`;
  const allowed = section === 'generate' ? 'vllm' : section === 'train' ? 'trainjob' : null;
  const engineOk = allowed ? ` || (${present(type)} && ${type} == '${allowed}')` : '';
  return {
    rule: `!(${present(gpus)}) || ${gpus} == 0${engineOk}`,
    message: allowed
      ? `placement.${group}.gpus: the built-in engine runs on CPU; GPUs need engines.${section}.type ${allowed}`
      : `placement.${group}.gpus: the judge runs on CPU or an external server; set gpus to 0`,
  };
}

function openaiRule(section: 'generate' | 'judge'): { rule: string; message: string } {
  const type = `self.engines.${section}.type`;
  return {
    rule: `!(${present(type)}) || ${type} != 'openai' || has(self.engines.${section}.openai)`,
    message: `engines.${section}.openai (its url) is required with type openai`,
  };
}

/** The CRD's CEL form of engineProblems (the judge-type pairing is checked by the controller only). */
export const engineCelRules: ReadonlyArray<{ rule: string; message: string }> = [
  openaiRule('generate'),
  openaiRule('judge'),
  {
    rule: `!(${present('self.engines.judge.type')}) || self.engines.judge.type != 'openai'`,
    message: 'engines.judge.type openai: the judge scores with the reward-model service only; use builtin',
  },
  ...(['generate', 'judge', 'train', 'evaluate'] as const).map(gpuRule),
  {
    // Not iterating the list keeps the rule's cost bounded; the controller also checks one is writable.
    rule: `!(${present('self.engines.train.type')}) || self.engines.train.type != 'trainjob' || (${present('self.placement.volumes')} && size(self.placement.volumes) > 0)`,
    message:
      'engines.train.type trainjob needs placement.volumes: a writable PersistentVolumeClaim shared by the stage pods and the TrainJob',
  },
];
