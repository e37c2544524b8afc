/**
 * The first cluster run as deploy/examples/sentiment-demo.yaml documents it: the `npx rlhf` lines of its
 * header run as written (training shortened to one step: the test checks the commands and the artifacts,
 * not the models' quality) against a real nats-server standing in for the port-forwarded release NATS;
 * then every artifact URI the run names must exist where the run will look for it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ArtifactRouter, ArtifactSandbox, connectNats, createLogger } from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { modelVersion } from '@rlhf/service-kit';
import { parse } from 'yaml';
import { rlhfBin } from '../helpers/cli.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const examplePath = join(repo, 'deploy/examples/sentiment-demo.yaml');
const exampleText = readFileSync(examplePath, 'utf8');

/** The `npx rlhf ...` command lines of the example's header comment, as argument lists. */
const documented = exampleText
  .split('\n')
  .filter((line) => /^#\s+npx rlhf /.test(line))
  .map((line) =>
    line
      .replace(/^#\s+npx rlhf /, '')
      .trim()
      .split(/\s+/),
  );

/** Training as documented, but one optimizer step. */
function shortened(args: string[]): string[] {
  if (args[0] !== 'train') return args;
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--epochs') {
      out.push('--steps', '1');
      i++;
    } else out.push(args[i] as string);
  }
  return out;
}

function rlhf(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [rlhfBin, ...args], {
      cwd,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rlhf ${args.join(' ')} did not finish\n${out}`));
    }, 240_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

let nats: TestNats;
let work = '';
before(async () => {
  nats = await natsForTests();
  work = await mkdtemp(join(tmpdir(), 'sentiment-demo-'));
  // The commands name deploy/examples/... relative to a checkout.
  await symlink(join(repo, 'deploy'), join(work, 'deploy'));
});
after(async () => {
  await nats?.stop();
  await rm(work, { recursive: true, force: true });
});

test('the header documents the data, both models and the four pushes', () => {
  const heads = documented.map((a) => a.slice(0, 2).join(' '));
  assert.deepEqual(heads, [
    'data synth',
    'model init',
    'train sft',
    'model init',
    'train rm',
    'model push',
    'model push',
    'data push',
    'data push',
  ]);
  assert.match(exampleText, /^#\s+kubectl -n rlhf-system port-forward svc\/rlhf-nats 4222 &$/m);
  // The chart's NOTES.txt and docs/KUBERNETES.md tell users the same commands, word for word.
  for (const doc of ['charts/rlhf/templates/NOTES.txt', 'docs/KUBERNETES.md']) {
    const lines = readFileSync(join(repo, doc), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const args of documented)
      assert.ok(lines.includes(`npx rlhf ${args.join(' ')}`), `${doc}: rlhf ${args.join(' ')}`);
  }
});

test('the documented commands put every artifact sentiment-demo.yaml names in NATS', {
  timeout: 600_000,
}, async () => {
  // As after the port-forward: the pushes reach NATS at NATS_URL (127.0.0.1:4222 on a real cluster).
  const env = { NATS_URL: nats.url };
  for (const args of documented) {
    const r = await rlhf(shortened(args), work, env);
    assert.equal(r.code, 0, `rlhf ${args.join(' ')}\n${r.out}`);
  }
  const validated = await rlhf(['validate', '-f', examplePath], work, env);
  assert.equal(validated.code, 0, validated.out);

  const run = parse(exampleText) as {
    spec: {
      policy: { model: string };
      judge: { model: string };
      prompts: { dataset: string; eval: string };
    };
  };
  const models = [run.spec.policy.model, run.spec.judge.model];
  const datasets = [run.spec.prompts.dataset, run.spec.prompts.eval];
  // Every artifact URI in the run is one of these, so a URI added later without its push fails here.
  const named = [...exampleText.replace(/^#.*$/gm, '').matchAll(/(?:nats-obj|s3|file):\/\/[^\s,}]+/g)].map(
    (m) => m[0],
  );
  assert.deepEqual(new Set(named), new Set([...models, ...datasets]));

  const nc = await connectNats({
    url: nats.url,
    name: 'sentiment-demo-test',
    logger: createLogger('t', { level: 'warn' }),
  });
  try {
    const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
    for (const uri of models) assert.match(await modelVersion(store, uri), /^SHA-256=/, `${uri} is a model`);
    for (const uri of datasets) {
      const info = await store.info(uri);
      assert.ok(info && info.size > 0, `${uri} exists`);
      const first = new TextDecoder().decode(await store.get(uri)).split('\n')[0] as string;
      assert.equal(
        typeof (JSON.parse(first) as { prompt: unknown }).prompt,
        'string',
        `${uri} holds prompts`,
      );
    }
  } finally {
    await nc.close();
  }
});
