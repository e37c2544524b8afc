/**
 * The policy generator's OpenAI-compatible HTTP API (`--openai-port`): GET /v1/models (and /v1/models/<id>),
 * POST /v1/completions and /v1/chat/completions (JSON, or SSE with `stream: true`), and GET /health. Requests run through the
 * same checks, limits and batched sampler as the gRPC Generate call (runGenerate), so a request gives the
 * same tokens on either API for the same prompt and settings.
 *
 * Everything from the network is hostile: the gRPC bearer token guards every /v1 route (401 without it),
 * bodies larger than the gRPC message limit are cut off with 413, and bodies are checked field by field
 * (openai-request.ts). Faults of this server answer 500 "internal error"; their details go to the log only.
 *
 * Streaming sends each choice's tokens as the sampler takes them: one chunk per token and choice, choices
 * interleaved as they share decode steps (a lone row on the row loop takes up to 16 a step, sent together);
 * a choice's last chunk carries its finish reason; then an optional usage chunk and `data: [DONE]`. A client
 * that hangs up stops its rows at the next decode step.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  authMetadataKey,
  checkBearer,
  exposureWarning,
  type HttpApiOptions,
  type Logger,
  RlhfError,
  type RunningHttpApi,
} from '@rlhf/platform';
import type { LoadedModel } from '@rlhf/service-kit';
import { Counter, type Registry } from 'prom-client';
import type { PreparedPrompt } from '../generate-request.js';
import { type GeneratedBatch, runGenerate } from '../generate-rpc.js';
import type { PolicySampler } from '../policy-sampler.js';
import type { GenerateLimits } from '../sampling-settings.js';
import { OpenAiError, openAiErrorOf } from './openai-error.js';
import { type OpenAiJob, parseChatBody, parseCompletionBody } from './openai-request.js';
import { chatBody, choiceIndex, completionBody, type ResponseHead, usageChunk } from './openai-response.js';
import { type ChoiceDelta, ChoiceStream, chatChunk, completionChunk } from './openai-stream.js';
import { promptLogprobs } from './prompt-logprobs.js';

export interface OpenAiServerDeps {
  sampler: PolicySampler;
  limits: GenerateLimits;
  logger: Logger;
  metrics: Registry;
}

type Route = 'models' | 'model' | 'completions' | 'chat' | 'health' | 'other';

const modelsPrefix = '/v1/models/';
/** Bytes of a stream the client has not read yet, at most, before its generation is stopped. */
const maxStreamBuffer = 32 * 1024 * 1024;
/** Model URIs named by requests that /v1/models lists beside the configured names. */
const maxListedUris = 32;

const routes: Record<string, { method: string; route: Route }> = {
  '/v1/models': { method: 'GET', route: 'models' },
  '/v1/completions': { method: 'POST', route: 'completions' },
  '/v1/chat/completions': { method: 'POST', route: 'chat' },
  '/health': { method: 'GET', route: 'health' },
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request body as JSON, at most `max` bytes (413 past it, without reading the rest). */
async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const tooBig = () =>
    new OpenAiError(
      413,
      `the request body is over the server's limit of ${max} bytes; split the request`,
      null,
    );
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw tooBig();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooBig();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new OpenAiError(400, 'the request body is not valid JSON', null);
  }
}

export async function startOpenAiServer(deps: OpenAiServerDeps, o: HttpApiOptions): Promise<RunningHttpApi> {
  const requests = new Counter({
    name: 'rlhf_openai_requests_total',
    help: 'Requests to the OpenAI-compatible API by route and HTTP status',
    labelNames: ['route', 'status'],
    registers: [deps.metrics],
  });
  // Model ids: the --openai-model names, and the URIs requests named directly (listed once they loaded).
  const named = new Map(o.models.map((m) => [m.id, m.uri]));
  const loadedUris = new Set<string>();
  for (const m of o.models)
    await deps.sampler.model({ uri: m.uri, revision: '', digest: '' }, '--openai-model');

  const modelFor = async (id: string): Promise<LoadedModel> => {
    const uri = named.get(id) ?? (id.includes('://') ? id : undefined);
    if (uri === undefined)
      throw new OpenAiError(
        404,
        `model: ${JSON.stringify(id)} is not served here; GET /v1/models lists the ids (or name a model URI)`,
        'model',
        'invalid_request_error',
        'model_not_found',
      );
    const model = await deps.sampler.model({ uri, revision: '', digest: '' });
    if (!named.has(id) && !loadedUris.has(id)) {
      // The list stays short: the most recent URIs only (each loaded once, so a real model's).
      if (loadedUris.size >= maxListedUris) loadedUris.delete(loadedUris.values().next().value as string);
      loadedUris.add(id);
    }
    return model;
  };

  const modelCard = (id: string) => ({
    id,
    object: 'model',
    created: 0,
    owned_by: 'rlhf',
    root: named.get(id) ?? id,
  });
  const listModels = () => ({ object: 'list', data: [...named.keys(), ...loadedUris].map(modelCard) });
  /** GET /v1/models/<id> (the id URL-encoded, as clients send URIs). */
  const retrieveModel = (path: string) => {
    let id: string;
    try {
      id = decodeURIComponent(path.slice(modelsPrefix.length));
    } catch {
      throw new OpenAiError(400, 'the model id in the path is not valid URL encoding', 'model');
    }
    if (!named.has(id) && !loadedUris.has(id))
      throw new OpenAiError(
        404,
        `model: ${JSON.stringify(id)} is not served here`,
        'model',
        'invalid_request_error',
        'model_not_found',
      );
    return modelCard(id);
  };

  const generate = async (
    job: OpenAiJob,
    req: IncomingMessage,
    res: ServerResponse,
    aborter: AbortController,
  ): Promise<void> => {
    const signal = aborter.signal;
    const model = await modelFor(job.model);
    const head: ResponseHead = {
      id: `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`,
      created: Math.floor(Date.now() / 1000),
      model: job.model,
    };
    const tok = model.model.tokenizer;
    const request = { ...job.request, model: { uri: model.uri, revision: '', digest: '' } };
    const ctx = { logger: deps.logger.child({ route: req.url, requestId: head.id }), signal };
    const topLogprobs = job.logprobs ? job.topLogprobs : 0;
    if (!job.stream) {
      // Echo with logprobs lists the prompt's tokens with theirs, as prompt_logprobs does.
      const promptK = Math.max(job.promptLogprobs ?? 0, job.echo && job.logprobs ? topLogprobs : 0);
      const wantsPrompt = job.promptLogprobs !== null || (job.echo && job.logprobs);
      const { batch, promptLps } = await deps.sampler.track(async () => {
        const batch = await runGenerate(deps.sampler, deps.limits, request, ctx, { topLogprobs });
        return {
          batch,
          promptLps: wantsPrompt ? await promptLogprobs(model, batch.promptIds, promptK) : undefined,
        };
      });
      sendJson(
        res,
        200,
        job.kind === 'chat'
          ? chatBody(tok, job, head, batch, promptLps)
          : completionBody(tok, job, head, batch, promptLps),
      );
      return;
    }
    // Headers go out with the first chunk, so a request refused by the checks still gets its JSON error.
    let prompts: readonly PreparedPrompt[] = [];
    // Text that could begin a stop string is held back until the stop is ruled in or out.
    const stopStrings = request.sampling?.stop ?? [];
    let first = true;
    let sentPromptIds = false;
    const send = (chunk: unknown): void => {
      if (signal.aborted) return;
      if (first) {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        first = false;
      }
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      // A client that reads slower than tokens come would make the server buffer its whole answer: past
      // the limit its generation stops, as if it had hung up.
      if (res.writableLength > maxStreamBuffer) {
        deps.logger.warn(
          { requestId: head.id, buffered: res.writableLength },
          'an OpenAI API stream is not being read; its generation stops',
        );
        aborter.abort(
          new RlhfError('CANCELLED', `the client left over ${maxStreamBuffer} bytes of the stream unread`),
        );
        res.destroy();
      }
    };
    const streams = new Map<number, ChoiceStream>();
    const streamOf = (index: number, prompt: PreparedPrompt): ChoiceStream => {
      let s = streams.get(index);
      if (!s) {
        s = new ChoiceStream(tok, stopStrings, job.echo ? prompt.text : '');
        streams.set(index, s);
      }
      return s;
    };
    const chunk = (p: number, index: number, d: ChoiceDelta, finish: string | null) => {
      const prompt = prompts[p] ?? { text: '', ids: [] };
      if (job.kind === 'completion') return completionChunk(tok, job, head, index, prompt, d, finish);
      const ids = job.returnTokenIds && !sentPromptIds ? prompt.ids : null;
      sentPromptIds = true;
      return chatChunk(tok, job, head, index, ids, d, finish);
    };
    let batch: GeneratedBatch;
    try {
      batch = await deps.sampler.track(() =>
        runGenerate(deps.sampler, deps.limits, request, ctx, {
          topLogprobs,
          onPrepared: (prepared) => {
            prompts = prepared;
          },
          // Every token as it is sampled; the token that finishes a choice goes with its completion.
          onToken: (p, s, so, done) => {
            if (done) return;
            const index = choiceIndex(job, p, s);
            const d = streamOf(index, prompts[p] ?? { text: '', ids: [] }).tokens(so);
            if (d) send(chunk(p, index, d, null));
          },
          onCompletion: (p, s, c) => {
            const index = choiceIndex(job, p, s);
            const d = streamOf(index, prompts[p] ?? { text: '', ids: [] }).finish(c);
            send(chunk(p, index, d, c.finishReason === 'length' ? 'length' : 'stop'));
          },
        }),
      );
    } catch (err) {
      if (first) throw err;
      // Mid-stream the status is sent: the error travels as an event, as OpenAI's servers send it.
      const e = openAiErrorOf(err);
      if (e.status === 500) deps.logger.error({ err }, 'OpenAI API stream failed');
      send(e.body());
      res.end('data: [DONE]\n\n');
      return;
    }
    if (job.streamUsage) send(usageChunk(job, head, batch));
    res.end('data: [DONE]\n\n');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const spec = routes[path] ?? (route === 'model' ? { method: 'GET', route } : undefined);
    if (!spec)
      throw new OpenAiError(
        404,
        `no route ${path}: try /v1/models, /v1/completions, /v1/chat/completions`,
        null,
      );
    if (req.method !== spec.method) throw new OpenAiError(405, `${path} takes ${spec.method}`, null);
    if (route === 'health') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (o.token) {
      const header = req.headers[authMetadataKey];
      const denied = checkBearer(header === undefined ? [] : [header], o.token);
      if (denied) {
        deps.logger.warn({ path, peer: req.socket.remoteAddress }, denied.message);
        throw new OpenAiError(
          401,
          `${denied.message}: send "Authorization: Bearer <token>" with the server's --auth-token-file token (the openai client's apiKey)`,
          null,
          'invalid_request_error',
          'invalid_api_key',
        );
      }
    }
    if (route === 'models') {
      sendJson(res, 200, listModels());
      return;
    }
    if (route === 'model') {
      sendJson(res, 200, retrieveModel(path));
      return;
    }
    const body = await readJson(req, o.maxBodyBytes);
    const job = route === 'chat' ? parseChatBody(body) : parseCompletionBody(body);
    // A caller that hangs up stops its rows at the next decode step (the sampler drops them).
    const aborter = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished)
        aborter.abort(new RlhfError('CANCELLED', 'the client closed the connection'));
    });
    await generate(job, req, res, aborter);
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes[path]?.route ?? (path.startsWith(modelsPrefix) ? 'model' : 'other');
    res.once('finish', () => requests.inc({ route, status: String(res.statusCode) }));
    handle(req, res, route).catch((err: unknown) => {
      const e = openAiErrorOf(err);
      if (e.status === 500) deps.logger.error({ err, path }, 'OpenAI API request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // An oversized body is not read to its end: the connection closes after the answer.
      if (e.status === 413) res.setHeader('connection', 'close');
      sendJson(res, e.status, e.body());
    });
  });
  // A client trickling its headers or body ties up a socket, not the sampler: a minute, then it is cut.
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new RlhfError('UNAVAILABLE', `cannot listen on ${o.host}:${o.port}: ${err.message}`, {
          field: '--openai-port',
          fix: 'pick a free port, or 0 for any free one',
        }),
      ),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // TLS is gRPC's only: a reachable HTTP API is guarded by the token alone.
  const exposed = exposureWarning(o.host, false, o.token !== undefined);
  if (exposed) deps.logger.warn({ host: o.host, port }, `OpenAI API: ${exposed}`);
  deps.logger.info(
    { port, models: [...named.keys()], auth: o.token ? `bearer token (${o.token.origin})` : 'none' },
    'OpenAI-compatible API listening',
  );

  let closing: Promise<void> | null = null;
  return {
    port,
    close: (graceMs) => {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
