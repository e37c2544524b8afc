/**
 * Which engine runs each stage of a run and where its GPUs go, one line per stage, as `rlhf validate`
 * prints it: the rule "GPUs only where a GPU engine runs" (run-spec engine-rules.ts) shown on the run at
 * hand, from the stage table's own engine and placement of every stage.
 */
import type { RlhfRunSpec } from '@rlhf/run-spec';
import { stageTable } from './stage-table.js';

export interface StageEngineLine {
  stage: string;
  engine: string;
  /** Where the stage computes and which GPUs it takes. */
  where: string;
}

const gpuCount = (n: number): string => `${n} GPU${n === 1 ? '' : 's'}`;

function whereOf(
  spec: RlhfRunSpec,
  engine: string,
  podGpus: number,
  services: readonly string[],
  scores: boolean,
): string {
  const pod = scores
    ? "; the stage pod scores the samples (pi_0's log-probs, rewards) on CPU"
    : '; the stage pod none';
  const g = spec.engines.generate;
  switch (engine) {
    case 'openai': {
      const model = g.openai?.model
        ? `fixed model ${JSON.stringify(g.openai.model)}${spec.iterations > 1 ? ` (every iteration samples that model, never the trained policy)` : ''}`
        : "model: the policy's URI, so the server must load it from the run's store";
      return `the OpenAI-compatible server ${g.openai?.url ?? '(no url)'} (${model})${pod}`;
    }
    case 'vllm':
      return `a vLLM server for the iteration's policy on spec.placement.generate (${gpuCount(spec.placement.generate.gpus)} per replica)${podGpus > 0 ? `; the stage pod ${gpuCount(podGpus)}` : pod}`;
    case 'trainjob': {
      const t = spec.engines.train.trainJob;
      return `a Kubeflow TrainJob (${t.numNodes} node${t.numNodes === 1 ? '' : 's'} x ${gpuCount(spec.placement.train.gpus)}) on spec.placement.train; the stage pod none`;
    }
    default:
      return services.length
        ? `built in (${services.join(', ')}), ONNX Runtime on CPU, no GPUs`
        : 'in the stage driver, on CPU, no GPUs';
  }
}

/** One line per stage the spec enables, in table order. */
export function stageEngines(spec: RlhfRunSpec): StageEngineLine[] {
  return stageTable
    .filter((s) => s.enabled(spec))
    .map((s) => {
      const engine = s.engine(spec);
      const scores = s.name === 'evaluate' || s.name === 'baseline';
      return {
        stage: s.name,
        engine,
        where: whereOf(spec, engine, s.placement(spec).gpus, s.services(spec), scores),
      };
    });
}
