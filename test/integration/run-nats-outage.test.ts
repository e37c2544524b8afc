/**
 * NATS going away mid-run: `rlhf run` (CI-sized) on a nats-server this test owns, killed while iteration 1
 * generates and started again on the same port and store a few seconds later. The run says it is paused
 * while NATS is gone, says when it is back, and finishes with every iteration trained.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type LocalNatsServer, startLocalNatsServer } from '@rlhf/platform';
import { rlhfBin } from '../helpers/cli.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
const dir = await mkdtemp(join(tmpdir(), 'rlhf-outage-'));
let server: LocalNatsServer | null = null;
after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a run pauses while NATS is down, with a clear message, and continues when it is back', async () => {
  const storeDir = join(dir, 'jetstream');
  server = await startLocalNatsServer({ storeDir });
  const { port, url } = server;
  const child = spawn(
    process.execPath,
    [rlhfBin, 'run', '-f', example, '--out', join(dir, 'run'), '--nats-url', url],
    {
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let outage: Promise<void> | null = null;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!outage && /iteration 1 generate/.test(stderr)) {
      outage = (async () => {
        // Killed, not stopped: the server gets no chance to say goodbye to its clients.
        const old = server as LocalNatsServer;
        process.kill(old.pid, 'SIGKILL');
        await old.stop();
        await new Promise((r) => setTimeout(r, 4000));
        server = await startLocalNatsServer({ storeDir, port });
      })();
    }
  });
  const code = await exited;
  await outage;
  assert.ok(outage, `the run never reached iteration 1 generate:\n${stderr}`);
  assert.equal(code, 0, stderr);
  // Plain lines for the person at the terminal (the JSON log lines say the same for log collectors).
  assert.match(stderr, /^NATS is unreachable; the run is paused until it is back \(.*\); nothing is lost/m);
  assert.match(stderr, /^NATS is back; the run continues$/m);
  const summary = JSON.parse(await readFile(join(dir, 'run', 'summary.json'), 'utf8')) as {
    iterations: Array<{ pairs: number }>;
  };
  assert.equal(summary.iterations.length, 2);
  assert.ok(summary.iterations.every((it) => it.pairs > 0));
});
