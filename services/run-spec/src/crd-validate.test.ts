/**
 * The CRD and run-spec agree: every manifest in test/fixtures/invalid-runs is rejected by both, at the path
 * its `# expect:` comment names, and valid runs come out of CRD defaulting exactly as run-spec defaults them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { type OpenApiSchema, rlhfRunCrd } from './crd.js';
import { CelError, evalCel, parseCel } from './crd-cel.js';
import { validateCustomResource } from './crd-validate.js';
import { InvalidRunError, parseRunObject } from './parse-run.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixtures = join(root, 'test/fixtures/invalid-runs');
const schema = (rlhfRunCrd() as { spec: { versions: [{ schema: { openAPIV3Schema: OpenApiSchema } }] } }).spec
  .versions[0].schema.openAPIV3Schema;

function runSpecPaths(doc: unknown): string[] {
  try {
    parseRunObject(doc, 'fixture');
  } catch (e) {
    if (e instanceof InvalidRunError) return e.problems.map((p) => p.path);
    throw e;
  }
  return [];
}

const files = readdirSync(fixtures).filter((f) => f.endsWith('.yaml'));

test('there are invalid-run fixtures, each naming its expected error path', () => {
  assert.ok(files.length >= 15, `only ${files.length} fixtures`);
  for (const f of files)
    assert.match(readFileSync(join(fixtures, f), 'utf8'), /^# expect: \S+/m, `${f} has no # expect: line`);
});

for (const f of files) {
  test(`invalid run ${f} is rejected by run-spec and by the CRD schema`, () => {
    const text = readFileSync(join(fixtures, f), 'utf8');
    const expected = /^# expect: (\S+)/m.exec(text)?.[1] ?? '';
    const doc = parse(text) as unknown;
    const fromRunSpec = runSpecPaths(doc);
    assert.ok(
      fromRunSpec.includes(expected),
      `run-spec reported ${JSON.stringify(fromRunSpec)}, not ${expected}`,
    );
    const fromCrd = validateCustomResource(schema, doc).problems;
    // A CEL rule without fieldPath reports at the object it sits on, an ancestor of the field.
    const hit = fromCrd.some((p) => p.path === expected || expected.startsWith(`${p.path}.`));
    assert.ok(hit, `the CRD reported ${JSON.stringify(fromCrd)}, not ${expected}`);
  });
}

const valid = [
  'deploy/examples/sentiment-demo.yaml',
  'deploy/examples/llama3-8b-scale.yaml',
  `apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: minimal}
spec:
  policy: {model: file:///models/sft}
  judge: {model: file:///models/rm}
  prompts: {dataset: file:///data/prompts.jsonl}`,
  `apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: gold-judge}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: gold, task: sentiment}
  prompts: {dataset: nats-obj://d/p.jsonl, perIteration: 64}
  iterations: 1
  dpo: {batchSize: 16, gradAccum: 16, labelSmoothing: 0.1}
  placement: {train: {gpus: 0, tolerations: [{key: a, operator: Exists}], affinity: {nodeAffinity: {}}}}`,
];

for (const [i, source] of valid.entries()) {
  test(`valid run ${i}: accepted by both, and CRD defaulting equals run-spec defaulting`, () => {
    const text = source.endsWith('.yaml') ? readFileSync(join(root, source), 'utf8') : source;
    const doc = parse(text) as Record<string, unknown>;
    const run = parseRunObject(doc, 'valid');
    const { object, problems } = validateCustomResource(schema, doc);
    assert.deepEqual(problems, []);
    assert.deepEqual((object as { spec: unknown }).spec, run.spec);
  });
}

test('lengthPenalty takes a number or auto on both sides', () => {
  for (const lengthPenalty of [0, 0.001, 2, 'auto']) {
    const doc = parse(readFileSync(join(root, 'deploy/examples/sentiment-demo.yaml'), 'utf8')) as {
      spec: { judge: Record<string, unknown> };
    };
    doc.spec.judge.lengthPenalty = lengthPenalty;
    assert.deepEqual(runSpecPaths(doc), [], String(lengthPenalty));
    assert.deepEqual(validateCustomResource(schema, doc).problems, [], String(lengthPenalty));
  }
});

test('the CEL interpreter: operators, has(), macros it lacks are errors', () => {
  const self = { a: 1, s: 'abc', l: [1, 2], o: { x: 'y' } };
  assert.equal(evalCel("self.a == 1 && self.s.startsWith('a') && size(self.l) == 2", { self }), true);
  assert.equal(evalCel('has(self.o.x) && !has(self.o.z)', { self }), true);
  assert.equal(evalCel("self.a > 1 ? false : self.s.matches('^a.c$')", { self }), true);
  assert.equal(evalCel('self.missing == 1 || true', { self }), true, 'errors absorbed by a deciding ||');
  assert.throws(() => evalCel('self.missing == 1', { self }), CelError);
  assert.throws(() => evalCel('self.l.all(x, x > 0)', { self }), CelError);
  assert.throws(() => parseCel('self.a ==='), CelError);
  assert.equal(evalCel('self >= oldSelf', { self: 3, oldSelf: 2 }), true);
  assert.equal(evalCel("'y' in [self.o.x, 'z']", { self }), true);
});
