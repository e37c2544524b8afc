/**
 * A model whose embedding has more rows than its tokenizer has tokens (the case: a BPE that learned
 * 444 tokens under vocab_size 512) generates only ids the tokenizer can decode, as transformers masks the
 * padded ids; unmasked, the same sampling picks them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { reviewCorpus } from '../../test/fixtures/test-corpus.js';
import { tinyConfig } from '../../test/fixtures/test-model.js';
import { loadModelDir, saveModelDir } from '../checkpoint/model-dir.js';
import { buildInferenceModel } from '../model/inference-graph.js';
import { initWeights } from '../model/weights.js';
import { Rng } from '../random/rng.js';
import { inferenceSessionOptions, OrtSession } from '../runtime/ort-session.js';
import { trainBpe } from '../tokenizer/bpe-trainer.js';
import { DecodeLoop } from './decode-loop.js';
import { generate } from './generate.js';
import { generateTexts } from './generate-texts.js';

test('ids past the tokenizer are never sampled from a padded vocabulary', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'padded-vocab-'));
  try {
    const tokenizerJson = trainBpe(reviewCorpus(200, 1), { vocabSize: 512 });
    const config = tinyConfig({ vocab_size: 512, initializer_range: 0.5 });
    await saveModelDir(join(dir, 'm'), { config, tokenizerJson, weights: initWeights(config, new Rng(3)) });
    const model = await loadModelDir(join(dir, 'm'));
    const size = model.tokenizer.vocabSize;
    assert.ok(size < 512, `the corpus gives fewer tokens than 512 (got ${size})`);
    const session = await OrtSession.create(
      buildInferenceModel(config, model.weights),
      inferenceSessionOptions,
    );
    const o = { temperature: 1, topP: 1, topK: 0, greedy: false, n: 8, maxNewTokens: 16, seed: 2 };
    const out = await generateTexts(model, session, [{ text: 'the movie' }, { text: 'a' }], o);
    const ids = out.flatMap((g) => g.response_ids.flat());
    assert.ok(ids.length > 100);
    assert.ok(ids.every((id) => id < size));
    // The service's decode loop masks the same way.
    const rows = [{ promptIds: [0, 5, 6], n: 8, promptIndex: 0 }];
    const loop = new DecodeLoop(session, config, { eosId: 1, padId: 2, sampleVocab: size });
    const looped = await loop.submit(rows, o);
    assert.ok(looped.flatMap((s) => s.tokenIds).every((id) => id < size));
    // Without the mask the same sampling does pick padded ids: the check above can fail.
    const unmasked = await generate(session, config, rows, { ...o, eosId: 1, padId: 2 });
    assert.ok(unmasked.flatMap((s) => s.tokenIds).some((id) => id >= size));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
