/**
 * The policy generator's OpenAI-compatible API as a client meets it: a real `rlhf serve policy-generator`
 * process with `--openai-port` and a bearer token, called with the official `openai` npm client (models,
 * completions from text and token ids, n > 1, log-probs with their top alternatives, prompt log-probs, echo,
 * stop, seeds, chat, token-by-token streaming of both, cancellation by hanging up) and with
 * raw fetch for what a hostile or careless caller sends (no token, a wrong token, unknown models, bad fields,
 * oversized bodies). The API runs the gRPC Generate path, so greedy and seeded outputs must equal Generate's
 * for the same prompt and settings.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadModelDir, type Tokenizer } from '@rlhf/ml-engine';
import { type ServiceProcess, startServiceProcess } from '@rlhf/platform/testing';
import {
  type Completion,
  type GenerateRequest,
  GenerateRequest as GenerateRequestCodec,
  type GenerateResponse,
  PolicyGeneratorServiceClient,
  type SamplingParams,
} from '@rlhf/proto';
import OpenAI from 'openai';
import { rlhfBin, runCli } from '../helpers/cli.js';
import { baseModel } from '../helpers/judge-models.js';
import { withTimeout } from '../helpers/timeout.js';

const TOKEN = 'openai-test-token-0123456789';
let dir: string;
let server: ServiceProcess;
let grpcClient: PolicyGeneratorServiceClient;
let openai: OpenAI;
let base: string;
let policyUri: string;
/** A wider policy with a long context: long streams, for timing and cancellation. */
let longUri: string;
let tokenizer: Tokenizer;
/** The test model's BOS id (its tokenizer has one). */
const bos = (): number => tokenizer.bosId as number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-openai-'));
  const policyDir = await baseModel(dir, 'policy', 'lm', 5);
  policyUri = pathToFileURL(policyDir).href;
  tokenizer = (await loadModelDir(policyDir)).tokenizer;
  longUri = pathToFileURL(
    await baseModel(dir, 'long', 'lm', 6, {
      max_position_embeddings: 1024,
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 4,
    }),
  ).href;
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  server = await withTimeout(
    startServiceProcess(rlhfBin, {
      command: ['serve', 'policy-generator'],
      artifactRoots: [dir],
      env: { RLHF_MODEL_CACHE: join(dir, 'cache') },
      args: [
        '--auth-token-file',
        tokenFile,
        '--openai-port',
        '0',
        '--openai-model',
        `policy=${policyUri}`,
        '--openai-model',
        `long=${longUri}`,
        '--metrics-port',
        '0',
        '--max-message-mb',
        '1',
      ],
    }),
    90_000,
    () => 'rlhf serve policy-generator start',
  );
  assert.ok(server.openaiPort !== null, 'the banner names the OpenAI port');
  base = `http://127.0.0.1:${server.openaiPort}`;
  openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: TOKEN, maxRetries: 0, timeout: 60_000 });
  grpcClient = new PolicyGeneratorServiceClient(
    `127.0.0.1:${server.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
});

after(async () => {
  grpcClient?.close();
  if (server) {
    server.child.kill('SIGTERM');
    // The HTTP API drains with the gRPC server: a clean exit.
    assert.equal(await server.exited, 0);
  }
  await rm(dir, { recursive: true, force: true });
});

type Req = Omit<Partial<GenerateRequest>, 'sampling'> & { sampling?: Partial<SamplingParams> };

/** The gRPC Generate call on the same process, with the token. */
function generate(req: Req): Promise<GenerateResponse> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  const full = GenerateRequestCodec.fromPartial({
    ...(req as Partial<GenerateRequest>),
    model: { uri: policyUri, revision: '', digest: '' },
  });
  return new Promise((resolve, reject) =>
    grpcClient.generate(full, md, { deadline: Date.now() + 60_000 }, (err, res) =>
      err ? reject(err) : resolve(res as GenerateResponse),
    ),
  );
}

/** vLLM's extra request fields, which the client passes through untyped. */
type Extra = Record<string, unknown>;
interface RlhfChoice {
  index: number;
  text: string;
  finish_reason: string;
  token_ids?: number[];
  prompt_token_ids?: number[];
  logprobs?: {
    tokens: string[];
    token_logprobs: number[];
    top_logprobs: Array<Record<string, number>>;
  } | null;
}

const finishOf = (c: Completion): string => (c.finishReason === 2 ? 'length' : 'stop');

function assertSameAsGrpc(choices: RlhfChoice[], res: GenerateResponse, n: number): void {
  const want = res.results.flatMap((r) => r.completions);
  assert.equal(choices.length, want.length);
  choices.forEach((c, i) => {
    const g = want[i] as Completion;
    assert.equal(c.index, i);
    assert.equal(c.text, g.text, `choice ${i} (prompt ${Math.floor(i / n)}) text`);
    if (c.token_ids) assert.deepEqual(c.token_ids, g.tokenIds, `choice ${i} token ids`);
    assert.equal(c.finish_reason, finishOf(g));
    if (c.logprobs) {
      assert.equal(c.logprobs.token_logprobs.length, g.tokenIds.length);
      // Padding and batch size change ONNX Runtime's summation order: log-probs agree to float32 rounding.
      c.logprobs.token_logprobs.forEach((lp, j) => {
        assert.ok(Math.abs(lp - (g.logprobs[j] as number)) < 1e-4);
      });
    }
  });
}

test('models.list names the served policy', async () => {
  const page = await openai.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, ['policy', 'long']);
  assert.equal(page.data[0]?.object, 'model');
  const card = await openai.models.retrieve('policy');
  assert.equal(card.id, 'policy');
  await assert.rejects(
    openai.models.retrieve('other'),
    (err: unknown) => err instanceof OpenAI.NotFoundError,
  );
});

test('completions: seeded n > 1 from text and token ids, with ids and log-probs, equal to gRPC Generate', async () => {
  const prompts = ['the film', 'the film was'];
  const extra: Extra = { return_token_ids: true, top_k: 50 };
  const res = await openai.completions.create({
    model: 'policy',
    prompt: prompts,
    n: 3,
    max_tokens: 12,
    seed: 3,
    temperature: 0.9,
    top_p: 0.95,
    logprobs: 0,
    ...extra,
  });
  assert.equal(res.object, 'text_completion');
  const choices = res.choices as unknown as RlhfChoice[];
  const grpcRes = await generate({
    prompts,
    n: 3,
    sampling: { seed: 3, maxNewTokens: 12, temperature: 0.9, topP: 0.95, topK: 50 },
  });
  assertSameAsGrpc(choices, grpcRes, 3);
  for (const c of choices) {
    assert.deepEqual(c.prompt_token_ids, [
      tokenizer.bosId,
      ...tokenizer.encode(prompts[Math.floor(c.index / 3)] as string),
    ]);
    assert.equal(c.logprobs?.tokens.length, c.token_ids?.length);
    assert.ok(c.logprobs?.token_logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)));
    assert.deepEqual(Object.values(c.logprobs?.top_logprobs[0] ?? {}), [c.logprobs?.token_logprobs[0]]);
  }
  const usage = res.usage;
  assert.equal(
    usage?.completion_tokens,
    choices.reduce((t, c) => t + (c.token_ids?.length ?? 0), 0),
  );
  assert.equal(
    usage?.prompt_tokens,
    (choices[0]?.prompt_token_ids?.length ?? 0) + (choices[3]?.prompt_token_ids?.length ?? 0),
  );

  // Token ids sample exactly what the text does; one list or a list of lists.
  const ids = await openai.completions.create({
    model: 'policy',
    // Ids are taken verbatim (as vLLM and Hugging Face do): BOS given, as the text's post-processor adds it.
    prompt: prompts.map((p) => [bos(), ...tokenizer.encode(p)]),
    n: 3,
    max_tokens: 12,
    seed: 3,
    temperature: 0.9,
    top_p: 0.95,
    ...extra,
  });
  assert.deepEqual(
    ids.choices.map((c) => c.text),
    choices.map((c) => c.text),
  );
  const single = await openai.completions.create({
    model: 'policy',
    prompt: [bos(), ...tokenizer.encode('the film')],
    n: 3,
    max_tokens: 12,
    seed: 3,
    temperature: 0.9,
    top_p: 0.95,
    ...extra,
  });
  assert.deepEqual(
    single.choices.map((c) => c.text),
    choices.slice(0, 3).map((c) => c.text),
  );

  // Same seed, same completions; another seed, others; tokens as ids when asked.
  const again = await openai.completions.create({
    model: 'policy',
    prompt: prompts,
    n: 3,
    max_tokens: 12,
    seed: 3,
    temperature: 0.9,
    top_p: 0.95,
    logprobs: 0,
    ...extra,
    return_tokens_as_token_ids: true,
  } as Parameters<typeof openai.completions.create>[0] & Extra);
  const againChoices = (again as { choices: unknown }).choices as RlhfChoice[];
  assert.deepEqual(
    againChoices.map((c) => c.token_ids),
    choices.map((c) => c.token_ids),
  );
  for (const c of againChoices)
    assert.deepEqual(
      c.logprobs?.tokens,
      c.token_ids?.map((id) => `token_id:${id}`),
    );
  const other = await openai.completions.create({
    model: 'policy',
    prompt: prompts,
    n: 3,
    max_tokens: 12,
    seed: 4,
  });
  assert.notDeepEqual(
    other.choices.map((c) => c.text),
    choices.map((c) => c.text),
  );
});

test('completions: greedy equals gRPC greedy; echo puts the prompt first; stop cuts before the stop string', async () => {
  const prompt = 'the plot';
  const greedy = await openai.completions.create({
    model: 'policy',
    prompt,
    n: 2,
    max_tokens: 16,
    temperature: 0,
  });
  const g = await generate({ prompts: [prompt], n: 2, sampling: { maxNewTokens: 16, greedy: true } });
  assertSameAsGrpc(greedy.choices as unknown as RlhfChoice[], g, 2);
  assert.equal(greedy.choices[0]?.text, greedy.choices[1]?.text, 'greedy samples agree');

  const echo = await openai.completions.create({
    model: 'policy',
    prompt,
    max_tokens: 16,
    temperature: 0,
    echo: true,
  });
  assert.equal(echo.choices[0]?.text, prompt + (greedy.choices[0]?.text ?? ''));

  // A stop string taken from the greedy text: the text ends right before it, finish_reason "stop".
  const text = greedy.choices[0]?.text ?? '';
  assert.ok(text.length >= 4, `greedy text long enough to cut: ${JSON.stringify(text)}`);
  const stop = text.slice(2, 4);
  const cut = await openai.completions.create({
    model: 'policy',
    prompt,
    max_tokens: 16,
    temperature: 0,
    stop: [stop],
  });
  assert.equal(cut.choices[0]?.text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0]?.finish_reason, 'stop');
  const gStop = await generate({
    prompts: [prompt],
    sampling: { maxNewTokens: 16, greedy: true, stop: [stop] },
  });
  assert.equal(cut.choices[0]?.text, gStop.results[0]?.completions[0]?.text);
});

test('chat completions: the conversation through the template, seeded and greedy equal to gRPC conversations', async () => {
  const messages = [
    { role: 'system' as const, content: 'review films' },
    { role: 'user' as const, content: 'the film was' },
  ];
  const res = await openai.chat.completions.create({
    model: 'policy',
    messages,
    n: 2,
    max_tokens: 10,
    seed: 7,
    logprobs: true,
    top_logprobs: 0,
    ...({ return_token_ids: true } as Extra),
  });
  assert.equal(res.object, 'chat.completion');
  const g = await generate({ conversations: [{ messages }], n: 2, sampling: { seed: 7, maxNewTokens: 10 } });
  const want = g.results[0]?.completions ?? [];
  assert.equal(res.choices.length, 2);
  res.choices.forEach((c, i) => {
    assert.equal(c.message.role, 'assistant');
    assert.equal(c.message.content, want[i]?.text);
    assert.equal(c.finish_reason, finishOf(want[i] as Completion));
    assert.deepEqual((c as unknown as { token_ids: number[] }).token_ids, want[i]?.tokenIds);
    assert.equal(c.logprobs?.content?.length, want[i]?.tokenIds.length);
    c.logprobs?.content?.forEach((t, j) => {
      assert.ok(Math.abs(t.logprob - (want[i]?.logprobs[j] as number)) < 1e-4);
    });
  });
  const greedy = await openai.chat.completions.create({
    model: 'policy',
    messages,
    max_tokens: 10,
    temperature: 0,
  });
  const gg = await generate({ conversations: [{ messages }], sampling: { maxNewTokens: 10, greedy: true } });
  assert.equal(greedy.choices[0]?.message.content, gg.results[0]?.completions[0]?.text);
});

test("prompt_logprobs: each prompt token's log-prob, the same as when that token was sampled", async () => {
  const g = await openai.completions.create({
    model: 'policy',
    prompt: 'the film',
    max_tokens: 8,
    temperature: 0,
    logprobs: 0,
    ...({ return_token_ids: true } as Extra),
  });
  const sampled = g.choices[0] as unknown as RlhfChoice;
  // The completion appended to the prompt: its tokens' prompt log-probs are the log-probs they were sampled with.
  const ids = [bos(), ...tokenizer.encode('the film'), ...(sampled.token_ids ?? [])];
  const res = await post('/v1/completions', {
    model: 'policy',
    prompt: ids,
    max_tokens: 1,
    prompt_logprobs: 0,
    return_token_ids: true,
  });
  assert.equal(res.status, 200);
  type Entry = Record<string, { logprob: number; rank: null; decoded_token: string }> | null;
  const choice = (
    (await res.json()) as { choices: Array<{ prompt_logprobs: Entry[]; prompt_token_ids: number[] }> }
  ).choices[0];
  assert.ok(choice);
  assert.deepEqual(choice.prompt_token_ids, ids);
  assert.equal(choice.prompt_logprobs.length, ids.length);
  assert.equal(choice.prompt_logprobs[0], null, 'BOS has no log-prob');
  const lps = choice.prompt_logprobs.slice(1).map((entry, k) => {
    const id = String(ids[k + 1]);
    assert.deepEqual(Object.keys(entry ?? {}), [id]);
    assert.equal(entry?.[id]?.decoded_token, tokenizer.decode([ids[k + 1] as number]));
    return entry?.[id]?.logprob as number;
  });
  assert.ok(lps.every((lp) => lp <= 0 && Number.isFinite(lp)));
  const tail = lps.slice(lps.length - (sampled.token_ids?.length ?? 0));
  // The forward-only training graph and the decode graph fuse differently: equal to float32 rounding.
  tail.forEach((lp, j) => {
    assert.ok(Math.abs(lp - (sampled.logprobs?.token_logprobs[j] as number)) < 1e-3, `token ${j}`);
  });

  const chat = await post('/v1/chat/completions', {
    model: 'policy',
    messages: [{ role: 'user', content: 'the film was' }],
    max_tokens: 2,
    prompt_logprobs: 0,
  });
  const chatBody = (await chat.json()) as { prompt_logprobs: Entry[] };
  assert.equal(chatBody.prompt_logprobs[0], null);
  assert.ok(chatBody.prompt_logprobs.length > 1);
});

test('streaming: completions and chat as SSE chunks ending in [DONE], the same choices as without stream', async () => {
  const params = { model: 'policy', prompt: ['the film', 'the plot'], n: 2, max_tokens: 12, seed: 11 };
  const whole = await openai.completions.create(params);
  const stream = await openai.completions.create({
    ...params,
    stream: true,
    stream_options: { include_usage: true },
  });
  const texts = new Map<number, string>();
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) texts.set(c.index, (texts.get(c.index) ?? '') + c.text);
    if (chunk.usage) usage = chunk.usage;
  }
  assert.deepEqual(
    [...texts.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t),
    whole.choices.map((c) => c.text),
  );
  assert.deepEqual(usage, whole.usage);

  const messages = [{ role: 'user' as const, content: 'the film was' }];
  const chat = await openai.chat.completions.create({
    model: 'policy',
    messages,
    n: 2,
    max_tokens: 8,
    seed: 5,
  });
  const chatStream = await openai.chat.completions.create({
    model: 'policy',
    messages,
    n: 2,
    max_tokens: 8,
    seed: 5,
    stream: true,
  });
  const parts = new Map<number, string>();
  const finish = new Map<number, string | null>();
  for await (const chunk of chatStream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const c of chunk.choices) {
      parts.set(c.index, (parts.get(c.index) ?? '') + (c.delta.content ?? ''));
      finish.set(c.index, c.finish_reason);
    }
  }
  chat.choices.forEach((c, i) => {
    assert.equal(parts.get(i), c.message.content);
    assert.equal(finish.get(i), c.finish_reason);
  });

  // On the wire: `data: {...}` events, the last `data: [DONE]`.
  const raw = await post('/v1/completions', {
    model: 'policy',
    prompt: 'the film',
    max_tokens: 4,
    stream: true,
  });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = (await raw.text()).split('\n\n').filter((e) => e !== '');
  assert.equal(events.at(-1), 'data: [DONE]');
  for (const e of events.slice(0, -1))
    assert.equal(JSON.parse(e.replace(/^data: /, '')).object, 'text_completion');

  // A client that hangs up mid-stream (breaking out of the loop aborts the request): the server goes on
  // answering.
  const long = await openai.completions.create({
    model: 'policy',
    prompt: 'the film',
    n: 64,
    max_tokens: 40,
    temperature: 1,
    stream: true,
  });
  let seen = 0;
  for await (const chunk of long) {
    seen += chunk.choices.length;
    break;
  }
  assert.equal(seen, 1);
  const next = await openai.completions.create({ model: 'policy', prompt: 'the film', max_tokens: 4 });
  assert.equal(next.choices.length, 1);
});

/** Completions logprobs as the server sends them (echo puts nulls first). */
interface Logprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}
type PromptEntry = Record<string, { logprob: number; rank: number; decoded_token: string }> | null;

test('logprobs: k alternatives per token from the raw model distribution, in OpenAI shapes; echo and prompt_logprobs', async () => {
  const prompt = 'the film';
  const params = { model: 'policy', prompt, n: 2, max_tokens: 10, seed: 21, temperature: 0.6, top_p: 0.9 };
  const plain = await openai.completions.create({ ...params, logprobs: 0 });
  // Tokens as ids: distinct tokens whose text is the same (partial UTF-8 shows as U+FFFD) keep their own keys.
  const res = await openai.completions.create({
    ...params,
    logprobs: 5,
    ...({ return_token_ids: true, return_tokens_as_token_ids: true } as Extra),
  });
  // Asking alternatives changes no sampled token.
  assert.deepEqual(
    res.choices.map((c) => c.text),
    plain.choices.map((c) => c.text),
  );
  for (const [i, c] of res.choices.entries())
    assert.deepEqual(
      (c.logprobs as unknown as Logprobs).token_logprobs,
      (plain.choices[i]?.logprobs as unknown as Logprobs | undefined)?.token_logprobs,
    );
  for (const c of res.choices) {
    const lp = c.logprobs as unknown as Logprobs;
    const ids = (c as unknown as RlhfChoice).token_ids ?? [];
    assert.equal(lp.tokens.length, ids.length);
    lp.top_logprobs.forEach((top, i) => {
      const entries = Object.entries(top ?? {});
      // The 5 most likely and the sampled token itself (when it is not among them): 5 or 6, as vLLM.
      assert.ok(entries.length === 5 || entries.length === 6, `${entries.length} alternatives`);
      assert.equal(top?.[lp.tokens[i] as string], lp.token_logprobs[i]);
      assert.ok(entries.every(([, v]) => v <= 0));
    });
    // text_offset: where each token starts in the choice's text.
    assert.equal(lp.text_offset[0], 0);
    for (let i = 1; i < lp.tokens.length; i++)
      assert.equal(
        lp.text_offset[i],
        (lp.text_offset[i - 1] as number) + (lp.tokens[i - 1] as string).length,
      );
  }

  // Raw log-probs (before temperature and top-p): the alternatives at each sampled position are the
  // model's, the same as prompt_logprobs gives for that position with the completion appended.
  const first = res.choices[0] as unknown as RlhfChoice & { logprobs: Logprobs };
  const ids = [bos(), ...tokenizer.encode(prompt), ...(first.token_ids ?? [])];
  const scored = await post('/v1/completions', {
    model: 'policy',
    prompt: ids,
    max_tokens: 1,
    prompt_logprobs: 5,
  });
  assert.equal(scored.status, 200);
  const entries = ((await scored.json()) as { choices: Array<{ prompt_logprobs: PromptEntry[] }> }).choices[0]
    ?.prompt_logprobs as PromptEntry[];
  assert.equal(entries.length, ids.length);
  assert.equal(entries[0], null);
  const sampledFrom = ids.length - (first.token_ids?.length ?? 0);
  entries.slice(1).forEach((e, t) => {
    const id = String(ids[t + 1]);
    const own = e?.[id];
    assert.ok(own && own.rank >= 1 && own.decoded_token === tokenizer.decode([ids[t + 1] as number]));
    const ranks = Object.values(e ?? {})
      .filter((x) => x !== own || x.rank <= 5)
      .map((x) => x.rank)
      .sort((a, b) => a - b);
    assert.deepEqual(ranks.slice(0, 5), [1, 2, 3, 4, 5], `position ${t + 1} ranks`);
    const at = t + 1 - sampledFrom;
    if (at < 0) return;
    // The same position sampled: the same alternatives and log-probs (two runs: float32 rounding apart).
    const top = first.logprobs.top_logprobs[at] ?? {};
    const byId = new Map(
      Object.entries(e ?? {})
        .filter(([, x]) => x.rank <= 5)
        .map(([key, x]) => [`token_id:${key}`, x.logprob]),
    );
    // The top 5 of the sampled position are the prompt position's top 5; the sampled token's own entry aside.
    const alternatives = Object.entries(top).filter(
      ([key]) => key !== first.logprobs.tokens[at] || byId.has(key),
    );
    assert.equal(alternatives.length, 5, `token ${at}`);
    for (const [key, v] of alternatives)
      assert.ok(Math.abs(v - (byId.get(key) as number)) < 1e-3, `token ${at} ${key}`);
  });

  // Echo with logprobs: the prompt's tokens first (BOS without a log-prob), then the completion's.
  const echo = await openai.completions.create({
    model: 'policy',
    prompt,
    max_tokens: 4,
    temperature: 0,
    echo: true,
    logprobs: 2,
  });
  const e = echo.choices[0];
  const elp = e?.logprobs as unknown as Logprobs;
  const promptIds = [bos(), ...tokenizer.encode(prompt)];
  assert.ok(e?.text.startsWith(prompt));
  assert.equal(elp.token_logprobs[0], null);
  assert.equal(elp.top_logprobs[0], null);
  assert.equal(elp.tokens.length, promptIds.length + 4);
  elp.token_logprobs.slice(1, promptIds.length).forEach((lp, t) => {
    const want = entries[t + 1]?.[String(promptIds[t + 1])]?.logprob as number;
    assert.ok(Math.abs((lp as number) - want) < 1e-4, `prompt token ${t + 1}`);
  });
  // Greedy: each sampled token is its position's most likely.
  elp.top_logprobs.slice(promptIds.length).forEach((top, i) => {
    const best = Math.max(...Object.values(top ?? {}));
    assert.equal(elp.token_logprobs[promptIds.length + i], best);
  });

  // Tokens as ids, alternatives included.
  const asIds = await post('/v1/completions', {
    model: 'policy',
    prompt,
    max_tokens: 3,
    logprobs: 3,
    return_tokens_as_token_ids: true,
  });
  const asIdsLp = ((await asIds.json()) as { choices: Array<{ logprobs: Logprobs }> }).choices[0]?.logprobs;
  assert.ok(asIdsLp?.top_logprobs.every((t) => Object.keys(t ?? {}).every((k) => /^token_id:\d+$/.test(k))));

  // Chat: content[i].top_logprobs lists exactly k, each with token, logprob and bytes.
  const chat = await openai.chat.completions.create({
    model: 'policy',
    messages: [{ role: 'user', content: 'the film was' }],
    max_tokens: 6,
    temperature: 0,
    logprobs: true,
    top_logprobs: 3,
  });
  const content = chat.choices[0]?.logprobs?.content ?? [];
  assert.ok(content.length > 0);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    for (const alt of t.top_logprobs) assert.deepEqual(alt.bytes, [...Buffer.from(alt.token, 'utf8')]);
    // Greedy: the sampled token is the first alternative.
    assert.equal(t.top_logprobs[0]?.token, t.token);
    assert.equal(t.top_logprobs[0]?.logprob, t.logprob);
    assert.ok((t.top_logprobs[1]?.logprob as number) <= t.logprob);
  }

  // Over the limit of 20 (OpenAI's and vLLM's), through the client: a 400 naming the parameter.
  for (const [call, param] of [
    [() => openai.completions.create({ model: 'policy', prompt, logprobs: 21 }), 'logprobs'],
    [
      () =>
        openai.chat.completions.create({
          model: 'policy',
          messages: [{ role: 'user', content: 'x' }],
          logprobs: true,
          top_logprobs: 21,
        }),
      'top_logprobs',
    ],
    [
      () => openai.completions.create({ model: 'policy', prompt, ...({ prompt_logprobs: 21 } as Extra) }),
      'prompt_logprobs',
    ],
  ] as const)
    await assert.rejects(call(), (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, param);
      assert.match(err.message, /0\.\.20/);
      return true;
    });
});

/** Tokens in the long policy's greedy completion of "the film" (measured by the streaming test). */
let longGreedyTokens = 0;

/** The tokens generated so far by the server, from its Prometheus metrics. */
async function tokensGenerated(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  const m = /^rlhf_generate_tokens_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  assert.ok(m, 'the metrics name rlhf_generate_tokens_total');
  return Number(m[1]);
}

test('streaming is token by token: chunks arrive as tokens are sampled, joined they are the whole answer', async (t) => {
  // Greedy with alternatives: one token a decode step (never the row loop), so one chunk a token.
  const params = { model: 'policy', prompt: 'the film', max_tokens: 30, temperature: 0, logprobs: 2 };
  const whole = await openai.completions.create({ ...params, ...({ return_token_ids: true } as Extra) });
  const stream = await openai.completions.create({
    ...params,
    stream: true,
    stream_options: { include_usage: true },
    ...({ return_token_ids: true } as Extra),
  });
  let text = '';
  const ids: number[] = [];
  const lps: number[] = [];
  let chunks = 0;
  let usage: OpenAI.CompletionUsage | undefined;
  let finish: string | null = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      chunks++;
      const tokenIds = (c as unknown as { token_ids: number[] }).token_ids;
      if (c.finish_reason === null)
        assert.equal(tokenIds.length, 1, 'a chunk before the last holds one token');
      text += c.text;
      ids.push(...tokenIds);
      lps.push(...((c.logprobs as unknown as Logprobs).token_logprobs as number[]));
      assert.equal(Object.keys((c.logprobs as unknown as Logprobs).top_logprobs[0] ?? {}).length >= 2, true);
      finish = c.finish_reason;
    }
  }
  const w = whole.choices[0] as unknown as RlhfChoice & { logprobs: Logprobs };
  assert.equal(text, w.text);
  assert.deepEqual(ids, w.token_ids);
  assert.equal(finish, w.finish_reason);
  lps.forEach((lp, i) => {
    assert.ok(Math.abs(lp - (w.logprobs.token_logprobs[i] as number)) < 1e-4);
  });
  assert.ok(chunks >= ids.length - 1, `${chunks} chunks for ${ids.length} tokens`);
  assert.deepEqual(usage, whole.usage);

  // Chat, token by token too: the first delta names the role, the joined content is the message.
  const messages = [{ role: 'user' as const, content: 'the film was' }];
  const chat = await openai.chat.completions.create({
    model: 'policy',
    messages,
    max_tokens: 20,
    temperature: 0,
  });
  const chatStream = await openai.chat.completions.create({
    model: 'policy',
    messages,
    max_tokens: 20,
    temperature: 0,
    logprobs: true,
    top_logprobs: 1,
    stream: true,
  });
  let content = '';
  let deltas = 0;
  let role: string | undefined;
  for await (const chunk of chatStream)
    for (const c of chunk.choices) {
      deltas++;
      role ??= c.delta.role;
      content += c.delta.content ?? '';
    }
  assert.equal(role, 'assistant');
  assert.equal(content, chat.choices[0]?.message.content);
  assert.ok(deltas >= (chat.usage?.completion_tokens ?? 0) - 1, `${deltas} deltas`);

  // On a long generation the first chunk comes long before the last: the stream is not sent at the end.
  const started = performance.now();
  const long = await openai.completions.create({
    model: 'long',
    prompt: 'the film',
    max_tokens: 600,
    temperature: 0,
    logprobs: 0,
    stream: true,
  });
  const arrivals: number[] = [];
  let tokens = 0;
  for await (const chunk of long)
    for (const c of chunk.choices) {
      arrivals.push(performance.now() - started);
      tokens += (c.logprobs as unknown as Logprobs).tokens.length;
    }
  assert.ok(tokens > 100, `${tokens} tokens: the long policy's greedy text runs long`);
  longGreedyTokens = tokens;
  const firstAt = arrivals[0] as number;
  const lastAt = arrivals.at(-1) as number;
  t.diagnostic(
    `${tokens} tokens in ${arrivals.length} chunks: first at ${firstAt.toFixed(0)} ms, last at ${lastAt.toFixed(0)} ms`,
  );
  assert.ok(
    lastAt - firstAt > 0.5 * lastAt,
    `first chunk at ${firstAt.toFixed(0)} ms, last at ${lastAt.toFixed(0)} ms: chunks came as sampled`,
  );
});

test('a client that hangs up mid-stream stops its generation', async (t) => {
  assert.ok(longGreedyTokens > 100, 'the streaming test measured the long greedy completion');
  const before = await tokensGenerated();
  // Greedy: had they run on, the 4 rows would have sampled 4 x longGreedyTokens tokens.
  const long = await openai.completions.create({
    model: 'long',
    prompt: 'the film',
    n: 4,
    max_tokens: 600,
    temperature: 0,
    stream: true,
  });
  let seen = 0;
  for await (const chunk of long) {
    seen += chunk.choices.length;
    break;
  }
  assert.equal(seen, 1);
  // Wait for the rows to stop: the counter holds still.
  let last = await tokensGenerated();
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await tokensGenerated();
    if (now === last) break;
    last = now;
  }
  const generated = last - before;
  t.diagnostic(`${generated} of ${4 * longGreedyTokens} tokens sampled before the hang-up stopped the rows`);
  assert.ok(
    generated < 2 * longGreedyTokens,
    `${generated} of ${4 * longGreedyTokens} tokens generated before the hang-up stopped the rows`,
  );
  const next = await openai.completions.create({ model: 'policy', prompt: 'the film', max_tokens: 4 });
  assert.equal(next.choices.length, 1);
});

function post(path: string, body: unknown, token: string | null = TOKEN, raw?: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: raw ?? JSON.stringify(body),
  });
}

async function assertError(
  res: Response,
  status: number,
  param: string | null,
  label: string,
): Promise<void> {
  const body = (await res.json()) as {
    error: { message: string; type: string; param: string | null; code: unknown };
  };
  assert.equal(res.status, status, `${label}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, 'string', label);
  assert.equal(body.error.type, status >= 500 ? 'server_error' : 'invalid_request_error', label);
  assert.equal(body.error.param, param, `${label}: ${body.error.message}`);
  assert.ok('code' in body.error, label);
}

test('errors: OpenAI-style bodies with the right status, and the server keeps serving', async () => {
  const ok = { model: 'policy', prompt: 'the film', max_tokens: 2 };
  // Auth: every /v1 route needs the token; /health does not.
  await assertError(await post('/v1/completions', ok, null), 401, null, 'no token');
  await assertError(await post('/v1/completions', ok, 'not-the-token'), 401, null, 'wrong token');
  await assertError(await fetch(`${base}/v1/models`), 401, null, 'models without a token');
  await assert.rejects(
    new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list(),
    (err: unknown) => err instanceof OpenAI.AuthenticationError,
  );
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);

  await assertError(await post('/v1/completions', { ...ok, model: 'nope' }), 404, 'model', 'unknown model');
  // A model URI is confined like a gRPC ModelRef: outside the artifact roots it is refused.
  await assertError(
    await post('/v1/completions', { ...ok, model: 'file:///etc' }),
    403,
    'model',
    'model outside the roots',
  );
  await assert.rejects(
    openai.completions.create({ ...ok, model: 'nope' }),
    (err: unknown) => err instanceof OpenAI.NotFoundError,
  );
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ ...ok, top_p: 2 }, 'top_p'],
    [{ ...ok, temperature: 'hot' }, 'temperature'],
    [{ ...ok, n: 0 }, 'n'],
    [{ ...ok, n: 5000 }, 'n'],
    [{ ...ok, max_tokens: 100_000 }, 'max_tokens'],
    [{ ...ok, max_tokens: 64 }, 'max_tokens'],
    [{ ...ok, max_tokens: 62 }, 'prompt'],
    [{ ...ok, prompt: 7 }, 'prompt'],
    [{ ...ok, prompt: [tokenizer.vocabSize + 5] }, 'prompt'],
    [{ ...ok, prompt: [-1] }, 'prompt'],
    [{ ...ok, stop: 3 }, 'stop'],
    [{ ...ok, logprobs: 21 }, 'logprobs'],
    [{ ...ok, prompt_logprobs: 21 }, 'prompt_logprobs'],
    [{ ...ok, echo: true, logprobs: 1, stream: true }, 'echo'],
    [{ ...ok, prompt_logprobs: 0, stream: true }, 'prompt_logprobs'],
    [{ ...ok, seed: 2 ** 32 }, 'seed'],
    [{ ...ok, frequency_penalty: 1 }, 'frequency_penalty'],
    [{ ...ok, made_up: true }, 'made_up'],
    [{ model: 'policy' }, 'prompt'],
    [{ prompt: 'x' }, 'model'],
  ];
  for (const [body, param] of bad)
    await assertError(await post('/v1/completions', body), 400, param, JSON.stringify(body));
  const chatBad: Array<[Record<string, unknown>, string]> = [
    [{ model: 'policy', messages: [] }, 'messages'],
    [{ model: 'policy', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs'],
    [
      { model: 'policy', messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
      'messages[0].content[0]',
    ],
    [{ model: 'policy', messages: 'hi' }, 'messages'],
  ];
  for (const [body, param] of chatBad)
    await assertError(await post('/v1/chat/completions', body), 400, param, JSON.stringify(body));
  await assertError(await post('/v1/completions', null, TOKEN, '{"model": '), 400, null, 'bad JSON');
  await assertError(await post('/v1/completions', null, TOKEN, '[1, 2]'), 400, 'body', 'not an object');
  // Larger than --max-message-mb 1: refused unread.
  const big = { ...ok, prompt: 'x'.repeat(1_100_000) };
  await assertError(await post('/v1/completions', big), 413, null, 'oversized body');
  await assertError(await post('/v1/nothing', ok), 404, null, 'unknown route');
  await assertError(
    await fetch(`${base}/v1/completions`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    405,
    null,
    'GET on a POST route',
  );

  // Still serving, and the requests are counted by route and status.
  const after = await openai.completions.create(ok);
  assert.equal(after.choices.length, 1);
  if (server.metricsPort !== null) {
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    assert.match(text, /rlhf_openai_requests_total\{[^}]*route="completions"[^}]*status="401"[^}]*\} [1-9]/);
    assert.match(text, /rlhf_openai_requests_total\{[^}]*route="completions"[^}]*status="200"[^}]*\} [1-9]/);
  }
});

test('rlhf serve refuses a policy it cannot load, and --openai-port on a service without the API', async () => {
  const serve = (args: string[]) =>
    runCli(['serve', ...args, '--port', '0', '--metrics-port', 'off', '--artifact-root', dir]);
  const missing = await serve([
    'policy-generator',
    '--openai-port',
    '0',
    '--openai-model',
    `p=${pathToFileURL(join(dir, 'none')).href}`,
  ]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /error: --openai-model\.uri: no model directory/);
  const other = await serve(['reward-model', '--openai-port', '0']);
  assert.equal(other.code, 2, other.stderr);
  assert.match(other.stderr, /error: --openai-port: reward-model has no OpenAI-compatible API/);
});
