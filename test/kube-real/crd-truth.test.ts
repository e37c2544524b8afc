/**
 * CRD truth: the project's CRDs (charts/rlhf/crds) applied to a real kube-apiserver, and every RLHFRun of
 * test/fixtures/invalid-runs submitted to it (server-side dry run, strict field validation, as `kubectl
 * apply` does). Each bad run must be refused by the real server and by run-spec (`rlhf validate`) at the
 * field its `# expect:` line names or an ancestor of it; good runs must be accepted by both, with the
 * server's defaulting equal to run-spec's. Updates of stored objects exercise the CRDs' transition rules
 * (CEL with oldSelf: what cannot change after creation). The server's refusals are kept in refusals.md
 * beside this file, next to run-spec's; the test fails while that table differs from what the server
 * answers now (RLHF_KUBE_RECORD=1 rewrites it).
 *
 * Two stand-ins the fast tests use are held to the server here:
 * - the hand-written CRD validator (services/run-spec/src/crd-validate.ts with the CEL evaluator
 *   crd-cel.ts) must refuse exactly the fields the server refuses, on every bad run and every update, and
 *   accept and default the good runs as the server does;
 * - the fake API server of test/kube validates no CRD schema and runs no CEL (no fast test learns a refusal
 *   from it), but it applies the schema's defaults: it must store each good run's spec as the server does.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { OpenApiSchema } from '../../services/run-spec/src/crd.js';
import { rlhfIterationCrd, rlhfRunCrd } from '../../services/run-spec/src/crd.js';
import { validateCustomResource } from '../../services/run-spec/src/crd-validate.js';
import { InvalidRunError, parseRunObject } from '../../services/run-spec/src/parse-run.js';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { FakeApiServer } from '../kube/fake-api-server/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = join(root, 'test/fixtures/invalid-runs');
const tablePath = join(root, 'test/kube-real/refusals.md');
const collection = (plural: string) => `/apis/rlhf.dev/v1alpha1/namespaces/default/${plural}`;
const dryRun = '?dryRun=All&fieldValidation=Strict';
const runs = `${collection('rlhfruns')}${dryRun}`;
const schemaOf = (crd: OpenApiSchema) =>
  (crd as { spec: { versions: [{ schema: { openAPIV3Schema: OpenApiSchema } }] } }).spec.versions[0].schema
    .openAPIV3Schema;
const schema = schemaOf(rlhfRunCrd());
const iterationSchema = schemaOf(rlhfIterationCrd());

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

/** The distinct fields of a list of refusals, list indices dropped, sorted. */
const fieldSet = (fields: string[]) => [...new Set(fields.map((f) => f.replace(/\[\d+\]/g, '')))].sort();

/** What crd-validate.ts refuses, as field paths comparable with the server's. */
const localFields = (s: OpenApiSchema, doc: unknown, old?: unknown) =>
  fieldSet(validateCustomResource(s, doc, old).problems.map((p) => p.path));

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
let fake: FakeApiServer;
const files = readdirSync(fixtures)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const table: { file: string; expected: string; server: Refusal[]; runSpec: Refusal[] }[] = [];

before(async () => {
  fake = await FakeApiServer.start();
  for (const name of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    fake.loadCrdFile(join(root, 'charts/rlhf/crds', name));
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
  await fake?.stop();
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
    // The fast unit tests' stand-in for the server must refuse exactly the fields the server refuses.
    assert.deepEqual(
      localFields(schema, doc),
      fieldSet(server.map((r) => r.field)),
      `crd-validate.ts and the server (${JSON.stringify(server)}) refuse different fields`,
    );
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

/** POST to the fake API server of test/kube over HTTP, as a client would. */
async function postToFake(path: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

for (const [i, source] of valid.entries()) {
  test(`valid run ${i}: accepted by the server, run-spec, crd-validate.ts and the fake, all defaulting alike`, async () => {
    const text = source.endsWith('.yaml') ? readFileSync(join(root, source), 'utf8') : source;
    const doc = parse(text) as { metadata: { namespace?: string } };
    // Submitted to the test's default namespace, whatever the example names.
    delete doc.metadata.namespace;
    const run = parseRunObject(doc, 'valid');
    const res = await cp.request('POST', runs, JSON.parse(JSON.stringify(doc)));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const serverSpec = (res.body as { spec: unknown }).spec;
    assert.deepEqual(serverSpec, JSON.parse(JSON.stringify(run.spec)));
    const local = validateCustomResource(schema, doc);
    assert.deepEqual(local.problems, []);
    assert.deepEqual((local.object as { spec: unknown }).spec, serverSpec, 'crd-validate.ts defaulting');
    const stored = await postToFake(collection('rlhfruns'), doc);
    assert.equal(stored.status, 201, JSON.stringify(stored.body));
    assert.deepEqual((stored.body as { spec: unknown }).spec, serverSpec, 'the fake API server defaulting');
  });
}

/**
 * Updates of stored objects, each a dry-run PUT of the stored object with one change: the transition rules
 * (CEL with oldSelf) must refuse what cannot change after creation at `expected`, and let the rest through.
 */
interface StoredObject {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
}

interface UpdateCase {
  what: string;
  plural: 'rlhfruns' | 'rlhfiterations';
  change(obj: StoredObject): void;
  /** The field the server refuses; absent: the update is accepted. */
  expected?: string;
}

/** One object-valued field of a stored object's spec, to change in place. */
const part = (o: StoredObject, key: string) => o.spec[key] as Record<string, unknown>;
const updates: UpdateCase[] = [
  {
    what: 'policy.model changed',
    plural: 'rlhfruns',
    change: (o) => {
      part(o, 'policy').model = 'nats-obj://rlhf-models/other';
    },
    expected: 'spec.policy',
  },
  {
    what: 'reference initial -> previous',
    plural: 'rlhfruns',
    change: (o) => {
      o.spec.reference = 'previous';
    },
    expected: 'spec.reference',
  },
  {
    what: 'judge.type reward -> gold',
    plural: 'rlhfruns',
    change: (o) => {
      part(o, 'judge').type = 'gold';
    },
    expected: 'spec.judge',
  },
  {
    what: 'prompts.dataset changed',
    plural: 'rlhfruns',
    change: (o) => {
      part(o, 'prompts').dataset = 'nats-obj://rlhf-data/other.jsonl';
    },
    expected: 'spec.prompts',
  },
  {
    what: 'prompts.dataset removed',
    plural: 'rlhfruns',
    change: (o) => {
      delete part(o, 'prompts').dataset;
    },
    expected: 'spec.prompts',
  },
  {
    what: 'iterations 3 -> 2',
    plural: 'rlhfruns',
    change: (o) => {
      o.spec.iterations = 2;
    },
    expected: 'spec.iterations',
  },
  {
    what: 'generation.seed 42 -> 7',
    plural: 'rlhfruns',
    change: (o) => {
      part(o, 'generation').seed = 7;
    },
    expected: 'spec.generation.seed',
  },
  {
    what: 'generation.seed removed (its default is the stored 42)',
    plural: 'rlhfruns',
    change: (o) => {
      delete part(o, 'generation').seed;
    },
  },
  {
    what: 'iterations 3 -> 5',
    plural: 'rlhfruns',
    change: (o) => {
      o.spec.iterations = 5;
    },
  },
  {
    what: 'dpo.beta and judge.lengthPenalty changed',
    plural: 'rlhfruns',
    change: (o) => {
      part(o, 'dpo').beta = 0.2;
      part(o, 'judge').lengthPenalty = 0.001;
    },
  },
  {
    what: 'RLHFIteration spec.iteration changed',
    plural: 'rlhfiterations',
    change: (o) => {
      o.spec.iteration = 2;
    },
    expected: 'spec',
  },
  {
    what: 'RLHFIteration labels changed',
    plural: 'rlhfiterations',
    change: (o) => {
      o.metadata.labels = { team: 'a' };
    },
  },
];

const stored: Record<UpdateCase['plural'], { name: string; body: unknown }> = {
  rlhfruns: { name: 'sentiment-demo', body: undefined },
  rlhfiterations: { name: 'sentiment-demo-1', body: undefined },
};
const updateTable: { what: string; expected: string; server: Refusal[] }[] = [];

test('the objects the updates start from are stored', async () => {
  const run = parse(readFileSync(join(root, 'deploy/examples/sentiment-demo.yaml'), 'utf8')) as {
    metadata: { namespace?: string };
  };
  delete run.metadata.namespace;
  const iteration = {
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
  };
  for (const [plural, body] of [
    ['rlhfruns', run],
    ['rlhfiterations', iteration],
  ] as const) {
    const res = await cp.request('POST', collection(plural), body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    stored[plural].body = res.body;
  }
});

for (const u of updates) {
  test(`update: ${u.what}: ${u.expected ? `refused at ${u.expected}` : 'accepted'} by the server and crd-validate.ts`, async () => {
    const old = stored[u.plural].body;
    assert.ok(old, 'the stored object');
    const next = structuredClone(old) as StoredObject;
    u.change(next);
    const res = await cp.request('PUT', `${collection(u.plural)}/${stored[u.plural].name}${dryRun}`, next);
    const server = res.status === 200 ? [] : refusals(res.body as StatusBody);
    updateTable.push({ what: u.what, expected: u.expected ?? '', server });
    if (u.expected) {
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.ok(
        server.some((r) => r.field === u.expected),
        `the server refused ${JSON.stringify(server)}, not ${u.expected}`,
      );
    } else {
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const s = u.plural === 'rlhfruns' ? schema : iterationSchema;
    assert.deepEqual(
      localFields(s, next, old),
      fieldSet(server.map((r) => r.field)),
      `crd-validate.ts and the server (${JSON.stringify(server)}) refuse different fields`,
    );
  });
}

function cell(list: Refusal[]): string {
  return list
    .map((r) => `\`${r.field}\`: ${r.message.replace(/\|/g, '\\|').replace(/\n/g, ' ')}`)
    .join('<br>');
}

test('refusals.md records what the real server and run-spec answer now', () => {
  assert.equal(table.length, files.length, 'every fixture test ran');
  assert.equal(updateTable.length, updates.length, 'every update test ran');
  const rows = table.map((t) => `| ${t.file} | \`${t.expected}\` | ${cell(t.server)} | ${cell(t.runSpec)} |`);
  const updateRows = updateTable.map(
    (t) =>
      `| ${t.what} | ${t.expected ? `\`${t.expected}\`` : 'accepted'} | ${t.server.length ? cell(t.server) : 'accepted'} |`,
  );
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
    '## Updates: the transition rules',
    '',
    'A dry-run PUT of a stored object with one change: deploy/examples/sentiment-demo.yaml as created',
    '(judge type reward, reference initial, 3 iterations, seed 42), and an RLHFIteration of it. `rlhf',
    'validate` checks one manifest and has no old object, so only the server answers here.',
    '',
    '| update | expected | kube-apiserver |',
    '| --- | --- | --- |',
    ...updateRows,
    '',
  ].join('\n');
  if (process.env.RLHF_KUBE_RECORD === '1') writeFileSync(tablePath, text);
  assert.equal(
    readFileSync(tablePath, 'utf8'),
    text,
    'stale: rerun with RLHF_KUBE_RECORD=1 and review the diff',
  );
});
