/**
 * `rlhf validate --placement-policy`: a user checks a run against the cluster's placement policy before
 * applying it, and gets the same refusals (field by field) the controller would set as InvalidSpec.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/placement/${name}`, import.meta.url));

test('a run that asks only for allowed placement passes', async () => {
  const r = await runCli([
    'validate',
    '-f',
    fixture('gpu-run.yaml'),
    '--placement-policy',
    fixture('policy.yaml'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid RLHFRun gpu-run .*; placement allowed by .*policy\.yaml/);
});

test('refused placement exits 2 naming every field and what is allowed', async () => {
  const r = await runCli([
    'validate',
    '-f',
    fixture('reserved-run.yaml'),
    '--placement-policy',
    fixture('policy.yaml'),
  ]);
  assert.equal(r.code, 2, r.stdout);
  assert.match(r.stderr, /reserved-run\.yaml asks for a placement the policy .*policy\.yaml does not allow/);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('  spec.'));
  assert.deepEqual(
    lines.map((l) => l.trim().split(': ')[0]),
    [
      'spec.placement.generate.tolerations[0]',
      'spec.placement.train.priorityClassName',
      'spec.placement.schedulerName',
    ],
  );
  assert.match(
    lines[0] ?? '',
    /allowed tolerations: \{key: nvidia\.com\/gpu, operator: Exists, effect: NoSchedule\}/,
  );
  assert.match(lines[1] ?? '', /allowed priority classes: "rlhf-batch"/);
  assert.match(lines[2] ?? '', /"volcano" is not allowed .*allowed schedulers: none/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  // Without the policy the same file is a valid run: the schema alone does not judge placement.
  const plain = await runCli(['validate', '-f', fixture('reserved-run.yaml')]);
  assert.equal(plain.code, 0, plain.stderr);
});

test('a bad or missing policy file is refused naming the flag and the policy field', async () => {
  const bad = await runCli([
    'validate',
    '-f',
    fixture('gpu-run.yaml'),
    '--placement-policy',
    fixture('bad-policy.yaml'),
  ]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^error: --placement-policy: \S*bad-policy\.yaml is not a valid placement policy: allowedTolerations\[0\]\.key: is required.*; allowedPriorityClasses: must be a list/,
  );
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  const missing = await runCli([
    'validate',
    '-f',
    fixture('gpu-run.yaml'),
    '--placement-policy',
    fixture('no-such-policy.yaml'),
  ]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /^error: --placement-policy: cannot read the placement policy \S*no-such-policy\.yaml/,
  );
});

test('rlhf controller refuses a bad policy at start, before connecting anywhere', async () => {
  const r = await runCli(
    ['controller', '--placement-policy', fixture('bad-policy.yaml')],
    // No NATS or cluster behind these: the policy is checked first.
    { NATS_URL: 'nats://127.0.0.1:1', RLHF_WORKER_IMAGE: 'img', KUBECONFIG: '/nonexistent' },
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: --placement-policy: .*allowedTolerations\[0\]\.key: is required/);
});
