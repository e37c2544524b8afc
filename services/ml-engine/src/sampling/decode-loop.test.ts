import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tinyLlamaConfig } from '../../test/fixtures/tiny-llama.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { DecodeLoop, ROW_LOOP_SERVER_TRIPS, type StepInfo } from './decode-loop.js';
import { type GenerateOptions, type GenerateRequest, generate, type Sample } from './generate.js';
import { KvCache } from './kv-cache.js';
import { type RowAdvance, RowLoop, rowLoopMode } from './row-loop.js';

const config = tinyLlamaConfig({ initializer_range: 0.3 });
const base: GenerateOptions = {
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: 12,
  seed: 5,
  eosId: 1,
  padId: 2,
};
// An id outside the vocabulary: no row ends by EOS.
const noEos: GenerateOptions = { ...base, eosId: 40 };
// Prompts of different lengths, settings per request, early ends of every kind.
const requests: GenerateRequest[] = [
  { promptIds: [0, 5, 9, 13], n: 2, promptIndex: 0 },
  { promptIds: [0, 7], n: 3, promptIndex: 1, options: { seed: 12, topK: 5, topP: 0.9, maxNewTokens: 4 } },
  { promptIds: [0, 3, 4, 5, 6, 7], n: 1, promptIndex: 2, options: { greedy: true, stopIds: [7, 8, 9] } },
  {
    promptIds: [0, 11, 12],
    n: 2,
    promptIndex: 3,
    options: { temperature: 0.7, stopWhen: (t) => t.length === 6 },
  },
];

let session: OrtSession;
before(async () => {
  session = await OrtSession.create(buildInferenceModel(config, initWeights(config, new Rng(31))));
});
after(async () => {
  await session.dispose();
});

const tokens = (xs: readonly Sample[]) =>
  xs.map((s) => [s.promptIndex, s.sampleIndex, s.finishReason, ...s.tokenIds]);

function assertSame(got: readonly Sample[], want: readonly Sample[], what: string): void {
  assert.deepEqual(tokens(got), tokens(want), what);
  for (const [i, s] of got.entries()) {
    assert.equal(s.logprobs.length, s.tokenIds.length);
    for (const [k, lp] of s.logprobs.entries()) {
      const w = want[i]?.logprobs[k] as number;
      assert.ok(Math.abs(lp - w) < 1e-4, `${what}: log-prob ${lp} vs ${w}`);
    }
  }
}

function loopWith(o: Partial<ConstructorParameters<typeof DecodeLoop>[2]> = {}): {
  loop: DecodeLoop;
  steps: StepInfo[];
} {
  const steps: StepInfo[] = [];
  const loop = new DecodeLoop(session, config, {
    eosId: noEos.eosId,
    padId: base.padId,
    maxBatch: 64,
    ...o,
    onStep: (s) => {
      steps.push(s);
      o.onStep?.(s);
    },
  });
  return { loop, steps };
}

test('the loop samples what generate() samples: greedy and seeded, every finish reason, rows retired as they end', async () => {
  const reasons = new Set<string>();
  for (const eosId of [1, 40]) {
    for (const greedy of [true, false]) {
      const o = { ...base, eosId, greedy };
      const want = await generate(session, config, requests, o);
      const { loop, steps } = loopWith({ eosId });
      const got = await loop.submit(requests, o);
      await loop.idle(); // a request is answered mid-step; the step's own report comes after
      assertSame(got, want, `eos ${eosId}, greedy ${greedy}`);
      for (const x of got) reasons.add(x.finishReason);
      // Every row joined in the first step (prefill: token 1, decode: token 2; step k decodes token k + 2);
      // the batch shrinks as rows finish, and the steps stop with the last.
      assert.equal(steps[0]?.admitted, 8);
      assert.equal(
        steps.reduce((t, s) => t + s.tokens, 0),
        got.reduce((t, s) => t + s.tokenIds.length, 0),
      );
      assert.equal(steps.length, Math.max(...got.map((s) => s.tokenIds.length)) - 1);
      steps.forEach((s, k) => {
        const open = got.filter((x) => x.tokenIds.length > k + 1).length;
        assert.equal(s.rows, open, `step ${k}: rows still running`);
      });
      assert.ok((steps.at(-1)?.rows ?? 0) < 8, 'finished rows left the batch');
    }
  }
  assert.deepEqual([...reasons].sort(), ['eos', 'length', 'stop'], 'rows ended by each reason');
});

test('rows that join a running batch mid-way sample what they sample alone', async () => {
  const late: GenerateRequest[] = [
    { promptIds: [0, 3, 4, 5, 6, 7, 8, 9], n: 2, promptIndex: 7, options: { seed: 3 } },
    { promptIds: [0], n: 1, promptIndex: 8, options: { seed: 4, topP: 0.8 } },
  ];
  const alone = await loopWith().loop.submit(late, noEos);
  assertSame(alone, await generate(session, config, late, noEos), 'alone in the loop vs generate()');
  let joined: Promise<Sample[]> | undefined;
  const { loop, steps } = loopWith({
    onStep: (s) => {
      if (steps.length === 4) joined = loop.submit(late, noEos);
      void s;
    },
  });
  const first = loop.submit(requests, { ...noEos, maxNewTokens: 20 });
  const early = await first;
  assertSame(early, await generate(session, config, requests, { ...noEos, maxNewTokens: 20 }), 'first');
  assert.ok(joined, 'the second request was submitted while the first ran');
  assertSame(await joined, alone, 'joined mid-way vs alone');
  await loop.idle();
  const join = steps[4] as StepInfo;
  assert.equal(join.admitted, 3, 'the newcomers joined at the next step');
  assert.ok(join.rows > 3, `they shared the step with the running rows (${join.rows} rows)`);
  assert.equal(join.requests, 2, 'the running request and the new one');
});

test('requests arriving one per step into a full, churning batch each sample what they sample alone', async () => {
  const rng = new Rng(8);
  const arrivals: GenerateRequest[] = Array.from({ length: 24 }, (_, i) => ({
    promptIds: [0, ...Array.from({ length: 1 + rng.int(9) }, () => 3 + rng.int(36))],
    n: 1 + (i % 2),
    promptIndex: 100 + i,
    options: { seed: i, maxNewTokens: 3 + rng.int(18), ...(i % 3 === 0 ? { topK: 8 } : {}) },
  }));
  const pending: Array<Promise<Sample[]>> = [];
  const arrive = () => {
    if (pending.length < arrivals.length)
      pending.push(loop.submit([arrivals[pending.length] as GenerateRequest], noEos));
  };
  const { loop, steps } = loopWith({ maxBatch: 8, onStep: arrive });
  // One arrival per step; should the batch ever drain first, the next arrival starts it again.
  while (pending.length < arrivals.length) {
    arrive();
    await loop.idle();
  }
  const got = await Promise.all(pending);
  await loop.idle();
  for (const [i, r] of arrivals.entries())
    assertSame(got[i] as Sample[], await generate(session, config, [r], noEos), `arrival ${i}`);
  assert.ok(steps.every((s) => s.rows <= 8));
  assert.ok(
    steps.filter((s) => s.admitted > 0 && s.rows > s.admitted).length >= 10,
    'rows joined a running batch',
  );
  assert.ok(
    steps.some((s) => s.waiting > 0),
    'rows waited for room',
  );
});

test('maxBatch bounds the running batch; waiting rows join in FIFO order as rows finish', async () => {
  const { loop, steps } = loopWith({ maxBatch: 3 });
  const a = loop.submit(requests.slice(0, 2), noEos);
  const b = loop.submit(requests.slice(2), noEos);
  const [ga, gb] = await Promise.all([a, b]);
  await loop.idle();
  const want = await generate(session, config, requests, noEos);
  assertSame([...ga, ...gb], want, 'maxBatch 3');
  assert.ok(steps.every((s) => s.rows <= 3));
  assert.equal(Math.max(...steps.map((s) => s.rows)), 3);
  assert.equal(steps[0]?.admitted, 3);
  assert.ok(steps.filter((s) => s.admitted > 0).length >= 3, 'rows joined at later steps');
  assert.equal(steps.at(-1)?.waiting, 0);
});

test('a request cancelled mid-run stops its rows and rejects; the others run on unchanged', async () => {
  const controller = new AbortController();
  const long = { ...noEos, maxNewTokens: 20 };
  const { loop, steps } = loopWith({
    onStep: () => {
      if (steps.length === 3) controller.abort(new Error('gone'));
    },
  });
  const victim = loop.submit([{ promptIds: [0, 5], n: 3, promptIndex: 9 }], long, controller.signal);
  const other = loop.submit(requests, long);
  await assert.rejects(victim, /gone/);
  assertSame(await other, await generate(session, config, requests, long), 'the other request');
  const others = await other;
  const open = (k: number) => others.filter((x) => x.tokenIds.length > k + 1).length;
  assert.equal(steps[3]?.rows, open(3) + 3, 'the cancelled rows ran until the abort');
  assert.equal(steps[4]?.rows, open(4), 'and left at the next step');
  // Aborted while waiting: dropped before it runs, without sampling a token.
  const queued = new AbortController();
  const { loop: small, steps: smallSteps } = loopWith({ maxBatch: 2 });
  const running = small.submit([{ promptIds: [0, 5], n: 2 }], long);
  const waiting = small.submit([{ promptIds: [0, 6], n: 2 }], long, queued.signal);
  queued.abort(new Error('deadline'));
  await assert.rejects(waiting, /deadline/);
  assert.equal((await running).length, 2);
  assert.equal(
    smallSteps.reduce((t, s) => t + s.admitted, 0),
    2,
  );
  // The engine's own cancelled() hook: rows end where they were, and the request resolves.
  let calls = 0;
  const hooked = await loopWith().loop.submit(
    [{ promptIds: [0, 5], n: 2, options: { cancelled: () => ++calls > 4 } }],
    long,
  );
  assert.ok(hooked.every((s) => s.tokenIds.length <= 2));
  await loop.idle();
});

test('a lone row decodes on the row loop, up to 16 tokens a step, and samples what generate() samples', async () => {
  const rowLoop = new RowLoop(buildInferenceModel(config, initWeights(config, new Rng(31))), config);
  const long = { ...noEos, maxNewTokens: 40 };
  try {
    for (const extra of [{}, { greedy: true }, { eosId: 1 }, { temperature: 0.7 }]) {
      const o = { ...long, ...extra };
      for (let i = 0; i < 4; i++) {
        const req = [{ promptIds: [0, 5 + i, 9], n: 1, promptIndex: i }];
        const { loop, steps } = loopWith({ rowLoop, eosId: o.eosId });
        const got = await loop.submit(req, o);
        await loop.idle();
        assert.deepEqual(got, await generate(session, config, req, o), JSON.stringify(extra));
        const most = Math.max(...steps.map((s) => s.tokens));
        const onLoop = rowLoopMode({ ...o }) !== null && (got[0]?.tokenIds.length ?? 0) > 2;
        assert.equal(most > 2, onLoop, `${JSON.stringify(extra)}: ${most} tokens in a step`);
        // The first step also prefills: its first token, then up to ROW_LOOP_SERVER_TRIPS on the row loop.
        assert.ok(most <= ROW_LOOP_SERVER_TRIPS + 1, `${most} tokens in a step`);
      }
    }
    // A call arriving while the lone row runs joins at the end of that step; both then go step by step, and
    // the row left alone goes back on the row loop.
    let joined: Promise<Sample[]> | undefined;
    const { loop, steps } = loopWith({
      rowLoop,
      onStep: (s) => {
        if (!joined && s.tokens > 1)
          joined = loop.submit([{ promptIds: [0, 8], n: 1, promptIndex: 6 }], noEos);
      },
    });
    const first = [{ promptIds: [0, 5, 9], n: 1, promptIndex: 5 }];
    const early = await loop.submit(first, { ...long, maxNewTokens: 60 });
    assertSame(early, await generate(session, config, first, { ...long, maxNewTokens: 60 }), 'the first row');
    assertSame(
      (await joined) ?? [],
      await generate(session, config, [{ promptIds: [0, 8], n: 1, promptIndex: 6 }], noEos),
      'the second',
    );
    await loop.idle();
    const joinedAt = steps.findIndex((s) => s.admitted === 1 && s.rows === 2);
    assert.ok(joinedAt > 0, 'the second row joined a running step');
    assert.ok(
      steps.slice(joinedAt + 1).some((s) => s.rows === 1 && s.tokens > 1),
      'the first went on alone',
    );
    // Aborted while on the row loop: stops at the end of the step, and the call rejects.
    const controller = new AbortController();
    const { loop: aborting } = loopWith({
      rowLoop,
      onStep: (s) => s.tokens > 1 && controller.abort(new Error('gone')),
    });
    await assert.rejects(aborting.submit(first, long, controller.signal), /gone/);
  } finally {
    await rowLoop.dispose();
  }
});

test('a lone row the row loop gives back starts again step by step and samples what generate() samples', async () => {
  class GivingBack extends RowLoop {
    gaveBack = 0;
    override async advance(...args: Parameters<RowLoop['advance']>): Promise<RowAdvance> {
      const step = await super.advance(...args);
      this.gaveBack++;
      return { ...step, state: null, givenBack: true };
    }
  }
  const rowLoop = new GivingBack(buildInferenceModel(config, initWeights(config, new Rng(31))), config);
  const req = [{ promptIds: [0, 5, 9], n: 1, promptIndex: 3 }];
  const long = { ...noEos, maxNewTokens: 30 };
  const { loop, steps } = loopWith({ rowLoop });
  assert.deepEqual(await loop.submit(req, long), await generate(session, config, req, long));
  await loop.idle();
  assert.equal(rowLoop.gaveBack, 1, 'given back once, then step by step');
  assert.equal(
    steps.reduce((t, s) => t + s.finished, 0),
    1,
  );
  await rowLoop.dispose();
});

test('a row loop that fails is reported once; lone rows go on step by step and sample what generate() samples', async () => {
  // A row loop over a broken model: making its session throws.
  const broken = new RowLoop(new Uint8Array([8, 1, 2]), config);
  const errors: unknown[] = [];
  const { loop } = loopWith({ rowLoop: broken, onRowLoopError: (err) => errors.push(err) });
  const long = { ...noEos, maxNewTokens: 30 };
  for (let i = 0; i < 3; i++) {
    const req = [{ promptIds: [0, 5 + i, 9], n: 1, promptIndex: i }];
    assert.deepEqual(await loop.submit(req, long), await generate(session, config, req, long), `call ${i}`);
  }
  assert.equal(errors.length, 1, 'reported once');
});

test('KvCache: select drops rows and leading columns; concat pads the shorter side on the left', () => {
  // One tensor [rows 2, heads 1, columns 3, headDim 2]: value = 100 * row + 10 * column + d.
  const make = (rows: number, cols: number, at = 0) =>
    KvCache.fromOutputs(
      {
        'present.0.key': {
          data: Float32Array.from({ length: rows * cols * 2 }, (_, i) => {
            const r = Math.floor(i / (cols * 2));
            return 100 * (r + at) + 10 * Math.floor((i % (cols * 2)) / 2) + (i % 2);
          }),
          dims: [rows, 1, cols, 2],
        },
      },
      ['present.0.key'],
    );
  const a = make(2, 3);
  const s = a.select([1], 1);
  assert.deepEqual([s.rows, s.columns], [1, 2]);
  assert.deepEqual(Array.from(s.tensors[0] as Float32Array), [110, 111, 120, 121]);
  const c = s.concat(make(1, 3, 5));
  assert.deepEqual([c.rows, c.columns], [2, 3]);
  assert.deepEqual(
    Array.from(c.tensors[0] as Float32Array),
    [0, 0, 110, 111, 120, 121, 500, 501, 510, 511, 520, 521],
  );
  const d = make(1, 1, 7).concat(a);
  assert.deepEqual(Array.from(d.tensors[0] as Float32Array).slice(0, 6), [0, 0, 0, 0, 700, 701]);
});
