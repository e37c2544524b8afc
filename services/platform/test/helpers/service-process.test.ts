import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listeningBanner } from '../../src/service-main.js';
import { parseListeningBanner } from './service-process.js';

test('parseListeningBanner reads the ports of the banner startService prints, and nothing else', () => {
  assert.deepEqual(parseListeningBanner(listeningBanner('reward-model', '127.0.0.1', 41234, 9464)), {
    grpcPort: 41234,
    metricsPort: 9464,
    openaiPort: null,
  });
  assert.deepEqual(parseListeningBanner(listeningBanner('dpo-trainer', '0.0.0.0', 50051, null)), {
    grpcPort: 50051,
    metricsPort: null,
    openaiPort: null,
  });
  assert.deepEqual(
    parseListeningBanner(listeningBanner('policy-generator', '127.0.0.1', 50051, 9090, 8000)),
    { grpcPort: 50051, metricsPort: 9090, openaiPort: 8000 },
  );
  assert.deepEqual(
    parseListeningBanner(listeningBanner('policy-generator', '127.0.0.1', 50051, null, 8000)),
    {
      grpcPort: 50051,
      metricsPort: null,
      openaiPort: 8000,
    },
  );
  assert.equal(parseListeningBanner('{"level":"warn","msg":"listening soon"}'), null);
});
