/** The contract itself: buf lint is clean, generated code is up to date, and messages round-trip. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FinishReason, GenerateResponse, Stage, StageEvent, StageWork } from './index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('buf lint (STANDARD) is clean', () => {
  const r = spawnSync(join(root, 'node_modules/.bin/buf'), ['lint'], {
    cwd: join(root, 'proto'),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `buf lint:\n${r.stdout}${r.stderr}`);
});

test('proto/gen is what the .proto files generate (run `npm run proto:gen` after editing them)', () => {
  const out = mkdtempSync(join(tmpdir(), 'rlhf-gen-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const committed = join(root, 'proto/gen');
    const fresh = files(out)
      .map((f) => relative(out, f))
      .sort();
    assert.deepEqual(
      files(committed)
        .map((f) => relative(committed, f))
        .sort(),
      fresh,
      'generated file list differs: run npm run proto:gen',
    );
    for (const f of fresh) {
      assert.equal(
        readFileSync(join(committed, f), 'utf8'),
        readFileSync(join(out, f), 'utf8'),
        `proto/gen/${f} is stale: run npm run proto:gen`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a StageEvent with a oneof and a StageWork round-trip through the wire format', () => {
  const event = StageEvent.fromPartial({
    key: { namespace: 'default', run: 'demo', iteration: 2, stage: Stage.STAGE_GENERATE },
    time: new Date('2026-11-23T12:00:00Z'),
    event: {
      $case: 'shardDone',
      value: {
        shardIndex: 3,
        outputUri: 'nats-obj://rlhf-artifacts/runs/default/demo/iter-2/generate/shard-3.jsonl',
        items: 64,
      },
    },
  });
  const back = StageEvent.decode(StageEvent.encode(event).finish());
  assert.deepEqual(back, event);
  const work = StageWork.fromPartial({
    key: { run: 'demo', iteration: 1, stage: Stage.STAGE_JUDGE },
    shardIndex: 1,
    shardCount: 4,
    params: { $case: 'judge', value: { lengthPenalty: 0.001 } },
  });
  assert.deepEqual(StageWork.decode(StageWork.encode(work).finish()), work);
});

test('a GenerateResponse round-trips, including per-token log-probs', () => {
  const msg = GenerateResponse.fromPartial({
    results: [
      {
        promptIndex: 0,
        completions: [
          {
            text: ' was superb .',
            tokenIds: [5, 9, 1],
            logprobs: [-0.5, -1.25, -0.125],
            finishReason: FinishReason.FINISH_REASON_EOS,
          },
        ],
      },
    ],
  });
  assert.deepEqual(GenerateResponse.decode(GenerateResponse.encode(msg).finish()), msg);
});
