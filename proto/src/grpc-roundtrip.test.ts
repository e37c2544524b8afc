/**
 * The generated service definitions and clients work with @grpc/grpc-js end to end: a unary call and a
 * server stream over loopback, with a stand-in implementation (no model).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  FinishReason,
  type GenerateResponse,
  type GenerateStreamResponse,
  PolicyGeneratorServiceClient,
  type PolicyGeneratorServiceServer,
  PolicyGeneratorServiceService,
} from './index.js';

/** Echoes each prompt back `n` times as its completions, with the sample index as the only token. */
const echo: PolicyGeneratorServiceServer = {
  generate(call, callback) {
    const n = call.request.n || 1;
    callback(null, {
      results: call.request.prompts.map((prompt, promptIndex) => ({
        promptIndex,
        prompt,
        completions: Array.from({ length: n }, (_, j) => ({
          text: `${prompt}#${j}`,
          tokenIds: [j],
          logprobs: [-1],
          finishReason: FinishReason.FINISH_REASON_EOS,
        })),
      })),
    });
  },
  generateStream(call) {
    const n = call.request.n || 1;
    call.request.prompts.forEach((prompt, promptIndex) => {
      for (let sampleIndex = 0; sampleIndex < n; sampleIndex++) {
        call.write({
          promptIndex,
          sampleIndex,
          completion: {
            text: `${prompt}#${sampleIndex}`,
            tokenIds: [sampleIndex],
            logprobs: [-1],
            finishReason: FinishReason.FINISH_REASON_LENGTH,
          },
        });
      }
    });
    call.end();
  },
};

test('PolicyGeneratorService: unary and server-streaming calls over loopback', async () => {
  const server = new grpc.Server();
  server.addService(PolicyGeneratorServiceService, echo);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const client = new PolicyGeneratorServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const request = {
      model: { uri: 'file:///models/sft', revision: '', digest: '' },
      prompts: ['the acting', 'i really'],
      promptTokenIds: [],
      conversations: [],
      n: 2,
      sampling: { temperature: 0.7, topK: 0, stop: [], stopTokenIds: [], greedy: false },
      firstPromptIndex: 0,
    };
    const unary = await new Promise<GenerateResponse>((resolve, reject) =>
      client.generate(request, (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.deepEqual(
      unary.results.map((r) => r.completions.map((c) => c.text)),
      [
        ['the acting#0', 'the acting#1'],
        ['i really#0', 'i really#1'],
      ],
    );

    const streamed: GenerateStreamResponse[] = [];
    for await (const msg of client.generateStream(request)) streamed.push(msg as GenerateStreamResponse);
    assert.deepEqual(
      streamed.map((m) => [m.promptIndex, m.sampleIndex, m.completion?.finishReason]),
      [
        [0, 0, FinishReason.FINISH_REASON_LENGTH],
        [0, 1, FinishReason.FINISH_REASON_LENGTH],
        [1, 0, FinishReason.FINISH_REASON_LENGTH],
        [1, 1, FinishReason.FINISH_REASON_LENGTH],
      ],
    );
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
});
