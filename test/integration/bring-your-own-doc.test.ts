/**
 * docs/BRING-YOUR-OWN.md as written: its run and its chart values are the example files (so what the guide
 * shows is what the tests check), the run passes `rlhf validate` under the placement policy of those
 * values (and is refused under the empty one) without a warning, and a file:// input
 * moved off the run's volumes draws the warning the guide describes. The values render in
 * test/chart/helm-chart.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const guide = readFileSync(join(repo, 'docs/BRING-YOUR-OWN.md'), 'utf8');
const yamlBlocks = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const example = (file: string) => readFileSync(join(repo, 'deploy/examples', file), 'utf8');

test('the guide shows the example run and chart values verbatim', () => {
  assert.deepEqual(yamlBlocks, [example('bring-your-own-values.yaml'), example('bring-your-own.yaml')]);
});

test("the guide's run passes rlhf validate under its placement policy; a file:// input under no volume is warned about", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'byo-doc-'));
  try {
    const run = join(dir, 'run.yaml');
    await writeFile(run, yamlBlocks[1] as string);
    // The placement policy the guide's chart values give the controller.
    const values = parse(yamlBlocks[0] as string) as { controller: { placementPolicy: unknown } };
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, stringify(values.controller.placementPolicy));
    const empty = join(dir, 'empty-policy.yaml');
    await writeFile(empty, '{}\n');
    const refused = await runCli(['validate', '-f', run, '--placement-policy', empty]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /spec\.placement\.volumes\[0\]\.claimName: "team-data" is not allowed/);
    const ok = await runCli(['validate', '-f', run, '--placement-policy', policy]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid RLHFRun byo-smollm2 \(3 iterations, judge reward\); placement allowed/);
    assert.equal(ok.stderr.includes('warning'), false, ok.stderr);
    const printed = await runCli(['validate', '-f', run, '--print']);
    assert.match(printed.stdout, /model: hf:\/\/HuggingFaceTB\/SmolLM2-135M-Instruct/);
    assert.match(printed.stdout, /claimName: team-data/);

    const offVolume = join(dir, 'off-volume.yaml');
    await writeFile(offVolume, (yamlBlocks[1] as string).replace('file:///data/', 'file:///elsewhere/'));
    const warned = await runCli(['validate', '-f', offVolume]);
    assert.equal(warned.code, 0, 'a warning, since a local run reads the path as is');
    assert.match(
      warned.stderr,
      /^warning: spec\.prompts\.eval: file:\/\/\/elsewhere\/eval-prompts\.jsonl is under no volume the stage pods mount \(\/data\)/m,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
