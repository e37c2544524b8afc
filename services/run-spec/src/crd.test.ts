/**
 * The CRDs: the committed YAML is what the schema generates, the schema is structural (what the API server
 * demands before it accepts a CRD), every field is described for `kubectl explain`, defaults satisfy their
 * own schema, every CEL rule is within the interpreter's grammar, and the transition rules hold.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { parse } from 'yaml';
import { crdFiles, type OpenApiSchema, rlhfIterationCrd, rlhfRunCrd } from './crd.js';
import { parseCel } from './crd-cel.js';
import { validateCustomResource } from './crd-validate.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

const schemaOf = (crd: OpenApiSchema): OpenApiSchema =>
  (crd as { spec: { versions: [{ schema: { openAPIV3Schema: OpenApiSchema } }] } }).spec.versions[0].schema
    .openAPIV3Schema;

for (const dir of ['deploy/crds', 'charts/rlhf/crds']) {
  test(`${dir} is up to date with the run-spec schema`, () => {
    for (const [name, text] of Object.entries(crdFiles())) {
      let committed = '';
      try {
        committed = readFileSync(join(root, dir, name), 'utf8');
      } catch {
        assert.fail(`${dir}/${name} is missing: run \`npm run crds:gen\` and commit the result`);
      }
      assert.ok(
        committed === text,
        `${dir}/${name} is stale: run \`npm run crds:gen\` and commit the result`,
      );
    }
  });
}

test('the generated CRDs are valid apiextensions.k8s.io/v1 objects', () => {
  for (const text of Object.values(crdFiles())) new CustomResourceDefinition(parse(text)).validate();
});

const junctors = ['anyOf', 'allOf', 'oneOf', 'not'] as const;

/** Structural-schema rules (KEP-2335) plus our own: a description and a type on every field. */
function structuralProblems(s: OpenApiSchema, path: string, out: string[], inJunctor = false): void {
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (inJunctor) {
    for (const k of ['type', 'description', 'default', 'additionalProperties', 'nullable'])
      if (k in s) out.push(`${path}: ${k} inside a logical junctor`);
  } else {
    if (!s.type && !preserve && s['x-kubernetes-int-or-string'] !== true) out.push(`${path}: no type`);
    // The API server refuses anything on the root's metadata but name and generateName, a description too.
    const rootMetadata = path === '.metadata' || path.startsWith('.metadata.');
    if (typeof s.description !== 'string' && !rootMetadata) out.push(`${path}: no description`);
  }
  if (s.properties && s.additionalProperties) out.push(`${path}: both properties and additionalProperties`);
  for (const [k, child] of Object.entries((s.properties ?? {}) as Record<string, OpenApiSchema>))
    structuralProblems(child, `${path}.${k}`, out, inJunctor);
  if (s.items) structuralProblems(s.items as OpenApiSchema, `${path}[]`, out, inJunctor);
  if (s.additionalProperties)
    structuralProblems(s.additionalProperties as OpenApiSchema, `${path}.*`, out, inJunctor);
  for (const j of junctors) {
    const branches = j === 'not' ? (s.not ? [s.not] : []) : ((s[j] ?? []) as OpenApiSchema[]);
    for (const b of branches as OpenApiSchema[]) structuralProblems(b, `${path}(${j})`, out, true);
  }
  for (const r of (s['x-kubernetes-validations'] ?? []) as { rule: string }[]) {
    try {
      parseCel(r.rule);
    } catch (e) {
      out.push(`${path}: CEL rule ${r.rule} does not parse: ${(e as Error).message}`);
    }
  }
  if (s.default !== undefined) {
    const { problems } = validateCustomResource(s, s.default);
    for (const p of problems)
      out.push(`${path}: default ${JSON.stringify(s.default)} ${p.path} ${p.message}`);
  }
}

for (const crd of [rlhfRunCrd(), rlhfIterationCrd()]) {
  const name = (crd.metadata as { name: string }).name;
  test(`${name}: structural, described, defaults valid, CEL within the grammar`, () => {
    const out: string[] = [];
    structuralProblems(schemaOf(crd), '', out);
    assert.deepEqual(out, []);
  });
}

test('RLHFRun: names, status subresource and printer columns', () => {
  const crd = rlhfRunCrd() as {
    spec: {
      names: Record<string, unknown>;
      versions: [{ subresources: unknown; additionalPrinterColumns: { name: string; jsonPath: string }[] }];
    };
  };
  assert.deepEqual(crd.spec.names.shortNames, ['rr']);
  assert.deepEqual(crd.spec.names.categories, ['rlhf']);
  assert.deepEqual(crd.spec.versions[0].subresources, { status: {} });
  const columns = crd.spec.versions[0].additionalPrinterColumns.map((c) => c.name);
  for (const c of ['Iteration', 'Stage', 'Reward', 'Win Rate', 'Age']) assert.ok(columns.includes(c), c);
  // Every column points at a field the status schema declares.
  const status = schemaOf(rlhfRunCrd()) as { properties: Record<string, OpenApiSchema> };
  for (const c of crd.spec.versions[0].additionalPrinterColumns) {
    let node: OpenApiSchema | undefined = status;
    for (const part of c.jsonPath.split('.').slice(1))
      node = (node?.properties as Record<string, OpenApiSchema> | undefined)?.[part];
    if (!c.jsonPath.startsWith('.metadata'))
      assert.ok(node, `column ${c.name}: ${c.jsonPath} is not in the schema`);
  }
});

const example = parse(readFileSync(join(root, 'deploy/examples/sentiment-demo.yaml'), 'utf8')) as {
  spec: Record<string, unknown>;
};
const runSchema = schemaOf(rlhfRunCrd());

test('deploy/examples/sentiment-demo.yaml is a valid RLHFRun under the CRD', () => {
  assert.deepEqual(validateCustomResource(runSchema, example).problems, []);
});

test('transition rules: the policy cannot change, iterations only grow, status is free', () => {
  const update = (patch: Record<string, unknown>) =>
    validateCustomResource(runSchema, { ...example, spec: { ...example.spec, ...patch } }, example).problems;
  assert.deepEqual(update({}), []);
  assert.deepEqual(update({ iterations: 5 }), []);
  assert.deepEqual(
    update({ iterations: 2 }).map((p) => p.path),
    ['spec.iterations'],
  );
  assert.deepEqual(
    update({ policy: { model: 'nats-obj://rlhf-models/other' } }).map((p) => p.path),
    ['spec.policy'],
  );
  assert.deepEqual(
    update({ generation: { seed: 7 } }).map((p) => p.path),
    ['spec.generation.seed'],
  );
  // A create never sees oldSelf, so the same spec with fewer iterations is fine as a new object.
  assert.deepEqual(
    validateCustomResource(runSchema, { ...example, spec: { ...example.spec, iterations: 2 } }).problems,
    [],
  );
});

test('RLHFIteration: spec is immutable, status validates', () => {
  const schema = schemaOf(rlhfIterationCrd());
  const it = {
    apiVersion: 'rlhf.dev/v1alpha1',
    kind: 'RLHFIteration',
    metadata: { name: 'sentiment-demo-1' },
    spec: {
      run: 'sentiment-demo',
      iteration: 1,
      policy: 'nats-obj://rlhf-models/sft',
      reference: 'nats-obj://rlhf-models/sft',
      prompts: { dataset: 'nats-obj://rlhf-data/prompts.jsonl', offset: 0, count: 256 },
    },
    status: {
      phase: 'Running',
      stage: 'judge',
      stages: [
        {
          name: 'generate',
          state: 'Succeeded',
          shardsDone: 4,
          shardsTotal: 4,
          jobName: 'gen-1',
          attempts: 1,
        },
        { name: 'judge', state: 'Running', shardsDone: 1, shardsTotal: 4, jobName: 'judge-1', attempts: 1 },
      ],
      conditions: [
        {
          type: 'Progressing',
          status: 'True',
          reason: 'StageRunning',
          message: 'judge 1/4 shards',
          lastTransitionTime: '2025-01-01T00:00:00Z',
          observedGeneration: 1,
        },
      ],
    },
  };
  assert.deepEqual(validateCustomResource(schema, it).problems, []);
  const moved = { ...it, spec: { ...it.spec, iteration: 2 } };
  assert.deepEqual(
    validateCustomResource(schema, moved, it).problems.map((p) => p.path),
    ['spec'],
  );
  const badStage = { ...it, status: { ...it.status, stage: 'sampling' } };
  assert.deepEqual(
    validateCustomResource(schema, badStage).problems.map((p) => p.path),
    ['status.stage'],
  );
});
