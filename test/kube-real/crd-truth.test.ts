/**
 * CRD truth: the project's CRDs (charts/rlhf/crds) applied to a real kube-apiserver, and every RLHFRun of
 * test/fixtures/invalid-runs submitted to it (server-side dry run, strict field validation, as `kubectl
 * apply` does). Each bad run must be refused by the real server and by run-spec (`rlhf validate`) at the
 * field its `# expect:` line names or an ancestor of it; good runs must be accepted by both, with the
 * server's defaulting equal to run-spec's. The server's refusals are kept in refusals.md beside this file,
 * next to run-spec's; the test fails while that table differs from what the server answers now
 * (RLHF_KUBE_RECORD=1 rewrites it).
 *
 * The hand-written CRD validator (services/run-spec/src/crd-validate.ts with the CEL evaluator crd-cel.ts),
 * which the fast unit tests use, is checked here too: on every fixture it must refuse the same fields the
 * real server refuses.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { OpenApiSchema } from '../../services/run-spec/src/crd.js';
import { rlhfRunCrd } from '../../services/run-spec/src/crd.js';
import { validateCustomResource } from '../../services/run-spec/src/crd-validate.js';
import { InvalidRunError, parseRunObject } from '../../services/run-spec/src/parse-run.js';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = join(root, 'test/fixtures/invalid-runs');
const tablePath = join(root, 'test/kube-real/refusals.md');
const runs = '/apis/rlhf.dev/v1alpha1/namespaces/default/rlhfruns?dryRun=All&fieldValidation=Strict';
const schema = (rlhfRunCrd() as { spec: { versions: [{ schema: { openAPIV3Schema: OpenApiSchema } }] } }).spec
  .versions[0].schema.openAPIV3Schema;

interface Refusal {
  field: string;
  message: string;
}

interface StatusBody {
  kind?: string;
  code?: number;
  message?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

/**
 * The fields a refusal names. Validation failures (422) list causes with a field; strict decoding failures
 * (400) name unknown fields only inside the message: `strict decoding error: unknown field "spec.dpo.betta"`.
 */
function refusals(body: StatusBody): Refusal[] {
  const out: Refusal[] = [];
  for (const cause of body.details?.causes ?? []) {
    const message = cause.message ?? '';
    // anyOf failures come with the field <nil> and the path quoted in the message; the other <nil> cause
    // says only that CEL rules were skipped because the schema already failed.
    const field =
      cause.field && cause.field !== '<nil>'
        ? cause.field
        : /"([\w.[\]-]+)" must validate/.exec(message)?.[1];
    if (field) out.push({ field: field.replace(/\[\d+\]/g, ''), message });
  }
  for (const [, field = ''] of (body.message ?? '').matchAll(/unknown field "([^"]+)"/g)) {
    out.push({ field, message: `unknown field "${field}"` });
  }
  return out;
}

const atOrAbove = (expected: string) => (field: string) =>
  field === expected || expected.startsWith(`${field}.`);

function runSpecProblems(doc: unknown): Refusal[] {
  try {
    parseRunObject(doc, 'fixture');
  } catch (e) {
    if (e instanceof InvalidRunError) return e.problems.map((p) => ({ field: p.path, message: p.message }));
    throw e;
  }
  return [];
}

let cp: ControlPlane;
const files = readdirSync(fixtures)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const table: { file: string; expected: string; server: Refusal[]; runSpec: Refusal[] }[] = [];

before(async () => {
  cp = await startControlPlane({ controllers: false });
  for (const name of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml']) {
    const crd = parse(readFileSync(join(root, 'charts/rlhf/crds', name), 'utf8'));
    const res = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    assert.equal(res.status, 201, `the real API server refused ${name}: ${JSON.stringify(res.body)}`);
  }
  // A CRD serves only once Established; until then the resource path answers 404.
  for (const name of ['rlhfruns.rlhf.dev', 'rlhfiterations.rlhf.dev']) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await cp.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conditions =
        (res.body as { status?: { conditions?: { type: string; status: string; message?: string }[] } })
          .status?.conditions ?? [];
      const bad = conditions.find((c) => c.type === 'NonStructuralSchema' && c.status === 'True');
      assert.equal(bad, undefined, `${name}: ${bad?.message}`);
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
      assert.ok(Date.now() < deadline, `${name} not Established: ${JSON.stringify(conditions)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // Discovery of the new group reaches the handler a moment after Established.
  const deadline = Date.now() + 30_000;
  while ((await cp.request('GET', '/apis/rlhf.dev/v1alpha1')).status !== 200) {
    assert.ok(Date.now() < deadline, 'rlhf.dev/v1alpha1 never served');
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  await cp?.stop();
});

test('the real API server reports the pinned release', () => {
  assert.match(cp.version, /^v1\.\d+\.\d+$/);
});

for (const file of files) {
  test(`${file}: refused by the real API server and by run-spec at the expected field`, async () => {
    const text = readFileSync(join(fixtures, file), 'utf8');
    const expected = /^# expect: (\S+)/m.exec(text)?.[1] ?? '';
    const doc = parse(text) as unknown;
    const res = await cp.request('POST', runs, doc);
    assert.ok(
      res.status === 422 || res.status === 400,
      `the server answered ${res.status}: ${JSON.stringify(res.body)}`,
    );
    const server = refusals(res.body as StatusBody);
    const runSpec = runSpecProblems(doc);
    table.push({ file, expected, server, runSpec });
    assert.ok(
      server.map((r) => r.field).some(atOrAbove(expected)),
      `the server refused ${JSON.stringify(server)}, not ${expected} or an ancestor`,
    );
    assert.ok(
      runSpec.map((r) => r.field).some(atOrAbove(expected)),
      `run-spec refused ${JSON.stringify(runSpec)}, not ${expected} or an ancestor`,
    );
    // The fast unit tests' stand-in for the server must refuse every field the server refuses.
    const local = validateCustomResource(schema, doc).problems.map((p) => p.path);
    for (const r of server) {
      assert.ok(
        local.some((p) => p === r.field || r.field.startsWith(`${p}.`) || p.startsWith(`${r.field}.`)),
        `crd-validate.ts missed the server's ${r.field} (${r.message}); it reported ${JSON.stringify(local)}`,
      );
    }
  });
}

const valid = [
  'deploy/examples/sentiment-demo.yaml',
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
  test(`valid run ${i}: accepted by both, the server's defaulting equal to run-spec's`, async () => {
    const text = source.endsWith('.yaml') ? readFileSync(join(root, source), 'utf8') : source;
    const doc = parse(text) as { metadata: { namespace?: string } };
    // Submitted to the test's default namespace, whatever the example names.
    delete doc.metadata.namespace;
    const run = parseRunObject(doc, 'valid');
    const res = await cp.request('POST', runs, JSON.parse(JSON.stringify(doc)));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual((res.body as { spec: unknown }).spec, JSON.parse(JSON.stringify(run.spec)));
  });
}

function cell(list: Refusal[]): string {
  return list
    .map((r) => `\`${r.field}\`: ${r.message.replace(/\|/g, '\\|').replace(/\n/g, ' ')}`)
    .join('<br>');
}

test('refusals.md records what the real server and run-spec answer now', () => {
  assert.equal(table.length, files.length, 'every fixture test ran');
  const rows = table.map((t) => `| ${t.file} | \`${t.expected}\` | ${cell(t.server)} | ${cell(t.runSpec)} |`);
  const text = [
    '# Refusals of the invalid-run fixtures',
    '',
    `What kube-apiserver ${cp.version} (charts/rlhf/crds applied; dry run, strict field validation) and`,
    '`rlhf validate` (services/run-spec) answer for each manifest in test/fixtures/invalid-runs. Written',
    'by test/kube-real/crd-truth.test.ts with RLHF_KUBE_RECORD=1, checked by it otherwise.',
    '',
    '| fixture | expected field | kube-apiserver | rlhf validate |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
  if (process.env.RLHF_KUBE_RECORD === '1') writeFileSync(tablePath, text);
  assert.equal(
    readFileSync(tablePath, 'utf8'),
    text,
    'stale: rerun with RLHF_KUBE_RECORD=1 and review the diff',
  );
});
