/**
 * `rlhf model push|pull` and `rlhf data push|pull` as a user runs them, against a real nats-server, a real
 * S3-protocol server (s3rver, path-style at a custom endpoint) and a local Hugging Face Hub (the model info
 * and resolve endpoints @huggingface/hub calls), with file:// alongside.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModelDir } from '@rlhf/ml-engine';
import { natsForTests, startS3Server, type TestNats, type TestS3Server } from '@rlhf/platform/testing';
import { type CliResult, runCli } from '../helpers/cli.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

function assertOk(result: CliResult): void {
  assert.equal(result.code, 0, result.stderr);
}

/** One line naming the flag, no stack trace. */
function assertOneLine(result: CliResult, ...patterns: RegExp[]): void {
  assert.notEqual(result.code, 0, result.stdout);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  for (const p of patterns) assert.match(result.stderr, p);
}

async function sameModel(a: string, b: string): Promise<void> {
  const [x, y] = await Promise.all([loadModelDir(a), loadModelDir(b)]);
  assert.deepEqual(y.config, x.config);
  assert.deepEqual(y.weights, x.weights);
}

/**
 * A Hub serving one model repository at one commit: `GET /api/models/<repo>/revision/<rev>` (modelInfo,
 * with sha and siblings) and `GET /<repo>/resolve/<rev>/<file>` with byte ranges, as huggingface.co does.
 */
async function startHub(repo: string, commit: string, files: Map<string, Buffer>) {
  let downloads = 0;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const info = url.pathname.match(/^\/api\/models\/(.+)\/revision\/([^/]+)$/);
    if (info) {
      const rev = decodeURIComponent(info[2] as string);
      if (info[1] !== repo || (rev !== 'main' && rev !== commit)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          _id: 'x1',
          id: repo,
          sha: commit,
          private: false,
          siblings: [...files.keys(), 'pytorch_model.bin', 'README.md'].map((rfilename) => ({ rfilename })),
        }),
      );
      return;
    }
    const prefix = `/${repo}/resolve/`;
    if (url.pathname.startsWith(prefix)) {
      const [rev, ...rest] = url.pathname.slice(prefix.length).split('/');
      const body = files.get(rest.join('/'));
      if (!body || (decodeURIComponent(rev as string) !== commit && rev !== 'main')) {
        res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end();
        return;
      }
      const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)?$/);
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] === undefined ? body.length - 1 : Number(range[2]), body.length - 1);
        res.writeHead(206, {
          'content-range': `bytes ${start}-${end}/${body.length}`,
          'content-length': end - start + 1,
          etag: `"${createHash('sha256').update(body).digest('hex')}"`,
        });
        res.end(body.subarray(start, end + 1));
        if (end - start + 1 === body.length) downloads++;
        return;
      }
      downloads++;
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    downloads: () => downloads,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('rlhf model push|pull and rlhf data push|pull', () => {
  let root = '';
  let model = '';
  let nats: TestNats;
  let s3: TestS3Server;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'transfer-cli-'));
    model = join(root, 'base');
    const lines = Array.from(
      { length: 200 },
      (_, i) => `the film was ${['good', 'bad', 'fine'][i % 3]} today`,
    );
    await writeFile(join(root, 'corpus.txt'), `${lines.join('\n')}\n`);
    await writeFile(
      join(root, 'tiny.yaml'),
      'hidden_size: 16\nintermediate_size: 32\nnum_hidden_layers: 1\nnum_attention_heads: 2\nnum_key_value_heads: 1\nmax_position_embeddings: 32\n',
    );
    [nats, s3] = await Promise.all([natsForTests(), startS3Server(['rlhf-models', 'rlhf-data'])]);
    assertOk(
      await runCli([
        'model',
        'init',
        '--config',
        join(root, 'tiny.yaml'),
        '--tokenizer-corpus',
        join(root, 'corpus.txt'),
        '--out',
        model,
      ]),
    );
  });
  after(async () => {
    await Promise.all([nats?.stop(), s3?.stop()]);
    await rm(root, { recursive: true, force: true });
  });

  it('a model goes to nats-obj://, s3:// and file:// and comes back the same', async () => {
    const env = s3.env;
    const targets = [
      'nats-obj://rlhf-models/demo/sft',
      's3://rlhf-models/demo/sft',
      `file://${join(root, 'volume', 'sft')}`,
    ];
    for (const [i, to] of targets.entries()) {
      const pushed = await runCli(
        ['model', 'push', '--model', model, '--to', to, '--nats-url', nats.url],
        env,
      );
      assertOk(pushed);
      assert.match(pushed.stdout, new RegExp(`^pushed .*base to ${to.replace(/[/.]/g, '\\$&')}`));
      const again = await runCli(
        ['model', 'push', '--model', model, '--to', to, '--nats-url', nats.url],
        env,
      );
      assertOneLine(again, /--to/, /--overwrite/);
      assertOk(
        await runCli(
          ['model', 'push', '--model', model, '--to', to, '--overwrite', '--nats-url', nats.url],
          env,
        ),
      );
      if (to.startsWith('file://')) {
        await sameModel(model, join(root, 'volume', 'sft'));
        continue;
      }
      const out = join(root, `pulled-${i}`);
      assertOk(await runCli(['model', 'pull', '--from', to, '--out', out, '--nats-url', nats.url], env));
      await sameModel(model, out);
    }
    // From one store to another: S3 to the Object Store a cluster run reads.
    assertOk(
      await runCli(
        [
          'model',
          'push',
          '--model',
          's3://rlhf-models/demo/sft',
          '--to',
          'nats-obj://rlhf-models/from-s3',
          '--nats-url',
          nats.url,
        ],
        env,
      ),
    );
    assertOk(
      await runCli(
        [
          'model',
          'pull',
          '--from',
          'nats-obj://rlhf-models/from-s3',
          '--out',
          join(root, 'via-s3'),
          '--nats-url',
          nats.url,
        ],
        env,
      ),
    );
    await sameModel(model, join(root, 'via-s3'));
    // The object-store layout a run reads: one object per file and the manifest.
    const listed = await runCli(
      [
        'data',
        'pull',
        '--from',
        's3://rlhf-models/demo/sft/manifest.json',
        '--out',
        join(root, 'manifest.json'),
      ],
      env,
    );
    assertOk(listed);
    const manifest = JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8')) as {
      files: { name: string }[];
    };
    assert.deepEqual(
      manifest.files.map((f) => f.name).sort(),
      (await readdir(model)).filter((n) => !n.startsWith('.')).sort(),
    );
  });

  it('a model refusal names the flag and the fix', async () => {
    assertOneLine(
      await runCli(
        ['model', 'push', '--model', join(root, 'corpus.txt'), '--to', 's3://rlhf-models/x'],
        s3.env,
      ),
      /--model: .*not a model directory/,
    );
    assertOneLine(
      await runCli(['model', 'push', '--model', model, '--to', 's3://no-such-bucket/x'], s3.env),
      /--to: .*bucket does not exist.*create the bucket/,
    );
    assertOneLine(
      await runCli(['model', 'push', '--model', model, '--to', 'gs://b/x'], s3.env),
      /--to: unsupported artifact URI .*s3:\/\//,
    );
    assertOneLine(
      await runCli(
        ['model', 'pull', '--from', 's3://rlhf-models/absent', '--out', join(root, 'never')],
        s3.env,
      ),
      /--from: no model at s3:\/\/rlhf-models\/absent/,
    );
    assert.equal(await exists(join(root, 'never')), false);
  });

  it('a dataset file goes to nats-obj://, s3:// and file:// and comes back byte for byte', async () => {
    const file = join(root, 'prompts.jsonl');
    const text = Array.from({ length: 50 }, (_, i) => JSON.stringify({ prompt: `review ${i}:` })).join('\n');
    await writeFile(file, `${text}\n`);
    for (const [i, to] of [
      'nats-obj://rlhf-data/prompts.jsonl',
      's3://rlhf-data/sets/prompts.jsonl',
      `file://${join(root, 'volume', 'data', 'prompts.jsonl')}`,
    ].entries()) {
      const pushed = await runCli(
        ['data', 'push', '--file', file, '--to', to, '--nats-url', nats.url],
        s3.env,
      );
      assertOk(pushed);
      assert.match(pushed.stdout, /^pushed .*prompts\.jsonl to .* \(\d+\.\d kB, SHA-256=/);
      assertOneLine(
        await runCli(['data', 'push', '--file', file, '--to', to, '--nats-url', nats.url], s3.env),
        /^error: --to: .* exists .*--overwrite/,
      );
      const out = join(root, `pulled-${i}.jsonl`);
      assertOk(await runCli(['data', 'pull', '--from', to, '--out', out, '--nats-url', nats.url], s3.env));
      assert.equal(await readFile(out, 'utf8'), `${text}\n`);
      assertOneLine(
        await runCli(['data', 'pull', '--from', to, '--out', out, '--nats-url', nats.url], s3.env),
        /^error: --out: .* exists/,
      );
    }
    assertOneLine(
      await runCli(
        ['data', 'push', '--file', join(root, 'absent.jsonl'), '--to', 's3://rlhf-data/x'],
        s3.env,
      ),
      /^error: --file: .*absent\.jsonl does not exist/,
    );
    assertOneLine(
      await runCli(
        ['data', 'pull', '--from', 's3://rlhf-data/absent.jsonl', '--out', join(root, 'x.jsonl')],
        s3.env,
      ),
      /^error: --from: artifact s3:\/\/rlhf-data\/absent\.jsonl does not exist/,
    );
  });

  it('hf:// models are downloaded into the Hugging Face cache, imported, and read offline from it', async () => {
    const hfDir = join(root, 'hf-export');
    assertOk(await runCli(['model', 'export', '--model', model, '--out', hfDir]));
    const files = new Map<string, Buffer>();
    for (const name of await readdir(hfDir)) files.set(name, await readFile(join(hfDir, name)));
    const commit = 'aaaaaaaa0123456789abcdef0123456789abcdef';
    const hub = await startHub('test-org/tiny', commit, files);
    const hfHome = join(root, 'hf-home');
    const env = { HF_ENDPOINT: hub.url, HF_HOME: hfHome, HF_HUB_OFFLINE: '' };
    try {
      const out = join(root, 'from-hf');
      const pulled = await runCli(['model', 'pull', '--from', 'hf://test-org/tiny', '--out', out], env);
      assertOk(pulled);
      assert.equal(hub.downloads(), files.size, 'every checkpoint file once, nothing else');
      const repoDir = join(hfHome, 'hub', 'models--test-org--tiny');
      assert.equal((await readFile(join(repoDir, 'refs', 'main'), 'utf8')).trim(), commit);
      assert.deepEqual((await readdir(join(repoDir, 'snapshots', commit))).sort(), [...files.keys()].sort());
      const original = await loadModelDir(model);
      const imported = await loadModelDir(out);
      assert.deepEqual(imported.weights, original.weights);
      // Online again: the Hub is asked for the commit, and the cached files are not fetched a second time.
      assertOk(
        await runCli(
          ['model', 'import', '--from', `hf://test-org/tiny@${commit}`, '--out', join(root, 'again')],
          env,
        ),
      );
      assert.equal(hub.downloads(), files.size);
      // And pushed straight on to S3 from the Hub's copy.
      assertOk(
        await runCli(['model', 'push', '--model', 'hf://test-org/tiny', '--to', 's3://rlhf-models/hf/tiny'], {
          ...env,
          ...s3.env,
        }),
      );
      assertOneLine(
        await runCli(
          ['model', 'pull', '--from', 'hf://test-org/absent', '--out', join(root, 'never-hf')],
          env,
        ),
        /^error: --from: hf:\/\/test-org\/absent: no such repository/,
      );
    } finally {
      await hub.stop();
    }
    // The Hub gone: offline reads the cache; an uncached model is one line naming the fix.
    const offline = { HF_HOME: hfHome, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' };
    assertOk(
      await runCli(
        ['model', 'pull', '--from', 'hf://test-org/tiny@main', '--out', join(root, 'offline')],
        offline,
      ),
    );
    await sameModel(join(root, 'from-hf'), join(root, 'offline'));
    assertOneLine(
      await runCli(
        ['model', 'pull', '--from', 'hf://test-org/other', '--out', join(root, 'never-hf')],
        offline,
      ),
      /^error: --from: hf:\/\/test-org\/other is not in the Hugging Face cache .*HF_HUB_OFFLINE/,
    );
    assertOneLine(
      await runCli(['model', 'pull', '--from', 'hf://just-a-name', '--out', join(root, 'never-hf')], offline),
      /^error: --from: bad repository/,
    );
    assert.equal(await exists(join(root, 'never-hf')), false);
    // The Hub is a source only: nothing is pushed to it.
    assertOneLine(
      await runCli(
        ['model', 'push', '--model', join(root, 'offline'), '--to', 'hf://test-org/mine'],
        offline,
      ),
      /^error: --to: hf:\/\/test-org\/mine is a Hugging Face model, which is read-only here/,
    );
    assertOneLine(
      await runCli(
        ['data', 'push', '--file', join(root, 'offline', 'config.json'), '--to', 'hf://test-org/d'],
        offline,
      ),
      /^error: --to: hf:\/\/test-org\/d is a Hugging Face model, which is read-only here/,
    );
  });
});
