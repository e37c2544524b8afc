import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { parseRunYaml } from '@rlhf/run-spec';
import { stageUnits, unitServices } from '@rlhf/workflow';
import { parseVariants, setupRun, sharedSetupOf, variantRun, variantRunName } from './variant-runs.js';

const base = parseRunYaml(
  readFileSync(new URL('../../../../examples/quickstart.yaml', import.meta.url), 'utf8'),
  'quickstart.yaml',
);
/** Matches an RlhfError by its one-line description (`<field>: <message> (<fix>)`). */
const described = (pattern: RegExp) => (e: unknown) => e instanceof RlhfError && pattern.test(e.describe());
const ref = { namespace: 'default', name: variantRunName(base, 2, 'b') };

test('variants: b always first, each once, unknown ones named with the fix', () => {
  assert.deepEqual(parseVariants('a,g,a'), ['b', 'a', 'g']);
  assert.deepEqual(parseVariants('p,b,c'), ['b', 'p', 'c']);
  assert.throws(() => parseVariants('a,x'), described(/^--variants: unknown variant "x".*a,b,c,o,g,p/));
});

test('variant b is the base run with the seed in setup and sampling, and trains a PM only when p runs', () => {
  const b = setupRun(base, 2, false);
  assert.equal(b.metadata.name, 'quickstart-s2-b');
  assert.equal(b.spec.setup?.seed, 2);
  assert.equal(b.spec.generation.seed, 2);
  assert.equal(b.spec.setup?.preferenceModel, undefined);
  assert.deepEqual(
    { ...b.spec, setup: undefined, generation: undefined },
    {
      ...base.spec,
      setup: undefined,
      generation: undefined,
    },
  );
  const withPm = setupRun(base, 2, true);
  assert.ok(withPm.spec.setup?.preferenceModel, 'setup trains the preference model');
  assert.ok(
    (withPm.spec.setup?.model.maxPositionEmbeddings ?? 0) >= 192,
    'room for a prompt and two responses',
  );
  // Only the positions change: the policy's weights have the same shapes (RoPE has none).
  assert.equal(withPm.spec.setup?.model.hiddenSize, base.spec.setup?.model.hiddenSize);
  assert.equal(withPm.spec.setup?.model.vocabSize, base.spec.setup?.model.vocabSize);
});

test("the other variants run on b's artifacts with their own judge, and the offline ones once on as many pairs", () => {
  const shared = sharedSetupOf(ref, 0.0125, true);
  const runs = Object.fromEntries(
    (['a', 'g', 'p', 'o', 'c'] as const).map((v) => [v, variantRun(base, 2, v, shared)]),
  );
  for (const [v, r] of Object.entries(runs)) {
    assert.equal(r.metadata.name, `quickstart-s2-${v}`);
    assert.equal(r.spec.setup, undefined);
    assert.equal(
      r.spec.policy?.model,
      'nats-obj://rlhf-artifacts/runs/default/quickstart-s2-b/iter-0/models/sft',
    );
    assert.equal(
      r.spec.prompts.dataset,
      'nats-obj://rlhf-artifacts/runs/default/quickstart-s2-b/data/prompts.jsonl',
    );
    assert.equal(
      r.spec.prompts.eval,
      'nats-obj://rlhf-artifacts/runs/default/quickstart-s2-b/data/eval.jsonl',
    );
    assert.equal(r.spec.generation.seed, 2);
    assert.equal(r.spec.judge.task, 'sentiment');
    assert.deepEqual(r.spec.dpo, base.spec.dpo);
  }
  assert.deepEqual(runs.a?.spec.judge, {
    type: 'reward',
    model: shared.rewardModel,
    lengthPenalty: 0,
    task: 'sentiment',
  });
  assert.equal(runs.g?.spec.judge.type, 'gold');
  assert.deepEqual(runs.p?.spec.judge, {
    type: 'preference',
    model: 'nats-obj://rlhf-artifacts/runs/default/quickstart-s2-b/iter-0/models/pm',
    lengthPenalty: 0,
    task: 'sentiment',
  });
  for (const v of ['a', 'g', 'p']) {
    assert.equal(runs[v]?.spec.iterations, base.spec.iterations);
    assert.equal(runs[v]?.spec.prompts.perIteration, base.spec.prompts.perIteration);
  }
  const total = base.spec.iterations * base.spec.prompts.perIteration;
  for (const v of ['o', 'c']) {
    assert.equal(runs[v]?.spec.iterations, 1);
    assert.equal(runs[v]?.spec.prompts.perIteration, total);
    assert.equal(runs[v]?.spec.judge.lengthPenalty, 0.0125, "evaluated (o: judged) under b's penalized RM");
  }
  assert.equal(runs.o?.spec.pairs.dataset, undefined);
  assert.equal(
    runs.c?.spec.pairs.dataset,
    'nats-obj://rlhf-artifacts/runs/default/quickstart-s2-b/data/preferences.jsonl',
  );
  // Offline pairs leave nothing to generate or judge: no services, and no Jobs for those units.
  const c = runs.c?.spec;
  assert.ok(c);
  assert.deepEqual(unitServices(c, 'generate'), []);
  assert.deepEqual(unitServices(c, 'judge'), []);
  assert.deepEqual(unitServices(c, 'train'), ['dpo-trainer']);
  assert.deepEqual(
    stageUnits(c).map((u) => u.stage),
    ['setup', 'pair', 'train', 'evaluate'],
  );
});

test('the experiment needs a base run with setup and a reward-model judge', () => {
  const { setup: _s, ...noSetup } = base.spec;
  assert.throws(
    () => setupRun({ ...base, spec: { ...noSetup, policy: { model: 'file:///m' } } }, 1, false),
    described(/^spec\.setup: the experiment needs a base run with spec\.setup/),
  );
  assert.throws(
    () => setupRun({ ...base, spec: { ...base.spec, judge: { type: 'gold', lengthPenalty: 0 } } }, 1, false),
    described(/^spec\.judge\.type: /),
  );
});

test('a horizon past the base run lengthens a and b only; offline variants keep the base run prompt count', () => {
  const shared = sharedSetupOf(ref, 0.0125, true);
  assert.equal(base.spec.iterations, 3);
  assert.equal(setupRun(base, 2, false, 6).spec.iterations, 6);
  assert.equal(variantRun(base, 2, 'a', shared, 6).spec.iterations, 6);
  for (const v of ['g', 'p'] as const) assert.equal(variantRun(base, 2, v, shared, 6).spec.iterations, 3);
  for (const v of ['c', 'o'] as const) {
    const r = variantRun(base, 2, v, shared, 6);
    assert.equal(r.spec.iterations, 1);
    assert.equal(r.spec.prompts.perIteration, base.spec.prompts.perIteration * 3);
  }
  // A horizon below the base run's does not shorten it: the goals are read at the base run's last iteration.
  assert.equal(setupRun(base, 2, false, 1).spec.iterations, 3);
});
