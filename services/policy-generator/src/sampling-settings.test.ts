import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '@rlhf/platform';
import { SamplingParams } from '@rlhf/proto';
import { checkN, checkSamplingParams, defaultGenerateLimits } from './sampling-settings.js';

const limits = { ...defaultGenerateLimits, maxN: 8, maxNewTokens: 64, maxStops: 3 };

function fails(fn: () => unknown, code: string, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RlhfError);
    assert.equal(e.code, code);
    assert.equal(e.field, field);
    return true;
  });
}

test('unset fields take the proto defaults', () => {
  assert.deepEqual(checkSamplingParams(undefined, limits), {
    temperature: 1,
    topP: 1,
    topK: 0,
    greedy: false,
    maxNewTokens: 48,
    seed: 42,
    stop: [],
    stopIds: [],
  });
  const zeroTemperature = checkSamplingParams(
    SamplingParams.fromPartial({ temperature: 0, seed: 0 }),
    limits,
  );
  assert.equal(zeroTemperature.greedy, true, 'temperature 0 is greedy');
  assert.equal(zeroTemperature.seed, 0, 'seed 0 is a seed, not unset');
  assert.deepEqual(checkSamplingParams(SamplingParams.fromPartial({ stop: ['', 'x'] }), limits).stop, ['x']);
});

test('bad values name their field under the given prefix', () => {
  const p = (x: Partial<SamplingParams>) => SamplingParams.fromPartial(x);
  fails(
    () => checkSamplingParams(p({ temperature: -1 }), limits),
    'INVALID_ARGUMENT',
    'sampling.temperature',
  );
  fails(
    () => checkSamplingParams(p({ temperature: 101 }), limits),
    'INVALID_ARGUMENT',
    'sampling.temperature',
  );
  fails(() => checkSamplingParams(p({ topP: 0 }), limits), 'INVALID_ARGUMENT', 'sampling.top_p');
  fails(() => checkSamplingParams(p({ topP: 1.01 }), limits), 'INVALID_ARGUMENT', 'sampling.top_p');
  fails(
    () => checkSamplingParams(p({ maxNewTokens: 0 }), limits),
    'INVALID_ARGUMENT',
    'sampling.max_new_tokens',
  );
  fails(
    () => checkSamplingParams(p({ maxNewTokens: 65 }), limits),
    'RESOURCE_EXHAUSTED',
    'sampling.max_new_tokens',
  );
  fails(
    () => checkSamplingParams(p({ stop: ['a', 'b'], stopTokenIds: [1, 2] }), limits),
    'RESOURCE_EXHAUSTED',
    'sampling.stop',
  );
  fails(
    () => checkSamplingParams(p({ topP: Number.NaN }), limits, 'generate.sampling'),
    'INVALID_ARGUMENT',
    'generate.sampling.top_p',
  );
});

test('n: unset means 1; 0 and above 1024 are malformed; above the server limit is RESOURCE_EXHAUSTED', () => {
  assert.equal(checkN(undefined, limits), 1);
  fails(() => checkN(0, limits), 'INVALID_ARGUMENT', 'n');
  assert.equal(checkN(8, limits), 8);
  fails(() => checkN(9, limits), 'RESOURCE_EXHAUSTED', 'n');
  fails(() => checkN(1025, { ...limits, maxN: 2048 }), 'INVALID_ARGUMENT', 'n');
  fails(() => checkN(9, limits, 'generate.n'), 'RESOURCE_EXHAUSTED', 'generate.n');
});
