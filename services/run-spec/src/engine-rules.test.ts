/**
 * Engines per stage: GPUs only where a GPU engine runs (vLLM for sampling, a TrainJob for training), an
 * openai engine names its server, and the CRD's CEL rules refuse the same runs as `rlhf validate`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { evalCel } from './crd-cel.js';
import { engineCelRules, groupEngine } from './engine-rules.js';
import { InvalidRunError, parseRunYaml } from './parse-run.js';

const base = `apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: reward, model: nats-obj://m/rm}
  prompts: {dataset: nats-obj://d/p.jsonl}
`;

function problems(extra: string): Array<{ path: string; message: string }> {
  try {
    parseRunYaml(base + extra);
  } catch (e) {
    if (e instanceof InvalidRunError) return e.problems;
    throw e;
  }
  return [];
}

/** The CRD's engine rules on the raw spec, as the API server evaluates them (`self` is spec). */
function celRefusals(extra: string): string[] {
  const doc = parse(base + extra) as { spec: unknown };
  return engineCelRules.filter((r) => !evalCel(r.rule, { self: doc.spec })).map((r) => r.message);
}

test('a built-in stage asking for GPUs is refused, saying why and what to do', () => {
  const got = problems('  placement: {train: {gpus: 8}, generate: {gpus: 1}}\n');
  assert.deepEqual(
    got.map((p) => p.path),
    ['spec.placement.generate.gpus', 'spec.placement.train.gpus'],
  );
  assert.match(got[0]?.message ?? '', /asks for 1 GPU, but the generate stage runs on the built-in engine/);
  assert.match(
    got[0]?.message ?? '',
    /set gpus: 0, or run the stage on a GPU engine \(spec\.engines\.generate\.type: vllm\)/,
  );
  assert.match(got[1]?.message ?? '', /asks for 8 GPUs.*CPU.*spec\.engines\.train\.type: trainjob/);
});

test('GPU engines take the GPUs of their groups: vLLM for generate and evaluate, a TrainJob for train', () => {
  const extra = `  reference: previous
  engines: {generate: {type: vllm}, train: {type: trainjob, trainJob: {runtime: torch-distributed}}}
  placement: {generate: {gpus: 1}, evaluate: {gpus: 1}, train: {gpus: 8}, volumes: [{name: work, claimName: rlhf-work, mountPath: /work}]}
`;
  assert.deepEqual(problems(extra), []);
  const spec = parseRunYaml(base + extra).spec;
  assert.equal(groupEngine(spec, 'evaluate'), 'vllm');
  assert.equal(groupEngine(spec, 'judge'), 'builtin');
  assert.deepEqual(spec.engines.train.trainJob, { runtime: 'torch-distributed', numNodes: 1 });
  // The judge has no GPU engine, and an external OpenAI-compatible server needs no GPU in the stage pod.
  const judge = problems('  placement: {judge: {gpus: 1}}\n');
  assert.deepEqual(
    judge.map((p) => p.path),
    ['spec.placement.judge.gpus'],
  );
  assert.match(judge[0]?.message ?? '', /set gpus: 0$/);
  const openai = problems(
    '  engines: {generate: {type: openai, openai: {url: "http://gen:8000/v1", model: policy}}}\n  placement: {generate: {gpus: 2}}\n',
  );
  assert.match(openai[0]?.message ?? '', /handed to the OpenAI-compatible server .* so its pod needs none/);
});

test('an openai engine names its server; a server without the openai type is a mistake', () => {
  const missing = problems('  engines: {generate: {type: openai}}\n');
  assert.deepEqual(
    missing.map((p) => p.path),
    ['spec.engines.generate.openai'],
  );
  assert.match(
    missing[0]?.message ?? '',
    /url \(up to \/v1\), and model unless the server loads policies by URI/,
  );
  const stray = problems('  engines: {judge: {openai: {url: "http://rm:8000/v1", model: rm}}}\n');
  assert.match(
    stray[0]?.message ?? '',
    /spec\.engines\.judge\.type is builtin: set type: openai, or remove it/,
  );
  const badUrl = problems('  engines: {generate: {type: openai, openai: {url: "ftp://x", model: p}}}\n');
  assert.deepEqual(
    badUrl.map((p) => p.path),
    ['spec.engines.generate.openai.url'],
  );
  const goldBase = base.replace('{type: reward, model: nats-obj://m/rm}', '{type: gold, task: sentiment}');
  const gold = `${goldBase}  engines: {judge: {type: openai, openai: {url: "http://rm/v1", model: rm}}}\n`;
  assert.throws(
    () => parseRunYaml(gold),
    /spec\.engines\.judge\.type: openai scores each response with a served reward model/,
  );
});

test('a served judge is refused with the reason; served generation may leave its model to the policy URI', () => {
  const judge = problems(
    '  engines: {judge: {type: openai, openai: {url: "http://rm:8000/v1", model: rm}}}\n',
  );
  assert.deepEqual(
    judge.map((p) => p.path),
    ['spec.engines.judge.type'],
  );
  assert.match(judge[0]?.message ?? '', /reward-model service only .*use type builtin/);
  assert.deepEqual(
    problems('  engines: {generate: {type: openai, openai: {url: "http://g:8000/v1"}}}\n'),
    [],
  );
});

test("the CRD's CEL rules refuse what rlhf validate refuses and pass what it passes", () => {
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['  placement: {train: {gpus: 8}}\n', false],
    ['  placement: {judge: {gpus: 1}}\n', false],
    ['  placement: {evaluate: {gpus: 1}}\n', false],
    ['  engines: {generate: {type: vllm}}\n  placement: {evaluate: {gpus: 1}, generate: {gpus: 4}}\n', true],
    [
      '  reference: previous\n  engines: {train: {type: trainjob}}\n  placement: {train: {gpus: 8}, volumes: [{name: work, claimName: rlhf-work, mountPath: /work}]}\n',
      true,
    ],
    // A TrainJob passes the policy, pairs and checkpoint through a shared volume.
    ['  reference: previous\n  engines: {train: {type: trainjob}}\n', false],
    ['  engines: {generate: {type: openai}}\n', false],
    ['  engines: {generate: {type: openai, openai: {url: "http://g/v1", model: p}}}\n', true],
    ['  engines: {generate: {type: openai, openai: {url: "http://g/v1"}}}\n', true],
    ['  engines: {judge: {type: openai, openai: {url: "http://rm/v1", model: rm}}}\n', false],
  ];
  for (const [extra, ok] of cases) {
    assert.equal(problems(extra).length === 0, ok, `rlhf validate on ${JSON.stringify(extra)}`);
    assert.equal(celRefusals(extra).length === 0, ok, `CEL on ${JSON.stringify(extra)}`);
  }
});

test('a TrainJob run is refused at validation for what trl dpo cannot train as spec.dpo asks', () => {
  const got = problems(`  iterations: 3
  engines: {train: {type: trainjob, trainJob: {numNodes: 2}}}
  dpo: {labelSmoothing: 0.1, batchSize: 24, gradAccum: 2}
  placement: {train: {gpus: 8}, volumes: [{name: data, claimName: rlhf-data, mountPath: /data, readOnly: true}]}
`);
  assert.deepEqual(
    got.map((p) => p.path),
    ['spec.placement.volumes', 'spec.reference', 'spec.dpo.labelSmoothing', 'spec.dpo.batchSize'],
  );
  // A read-only volume cannot take the checkpoint TRL writes.
  assert.match(got[0]?.message ?? '', /needs a writable PersistentVolumeClaim shared by the stage pods/);
  assert.match(got[1]?.message ?? '', /set spec\.reference: previous/);
  assert.match(
    got[3]?.message ?? '',
    /24 pairs do not split into 2 micro-batches on each of 16 training processes: use a multiple of 32/,
  );
  const fine = `  iterations: 3\n  reference: previous\n  engines: {train: {type: trainjob}}\n  dpo: {batchSize: 64}\n  placement: {train: {gpus: 8}, volumes: [{name: work, claimName: rlhf-work, mountPath: /work}]}\n`;
  assert.deepEqual(problems(fine), []);
});
