/**
 * Namespaced NATS subjects on a real nats-server: stage workers take work of every namespace, but only for
 * runs that have a record in the state KV; a stray StageWork (no record, or a key that disagrees with its
 * subject) is terminated and logged with its subject, never executed, nothing written. A work consumer made
 * by a version without namespaces is replaced.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { AckPolicy, type JetStreamManager } from '@nats-io/jetstream';
import {
  connectNats,
  createLogger,
  ensureStreams,
  ensureWorkConsumer,
  type LocalNatsServer,
  type NatsConnection,
  openJetStream,
  parseWorkSubject,
  publishWork,
  shardMsgId,
  startLocalNatsServer,
  streams,
  workConsumerName,
  workFilter,
  workSubject,
} from '@rlhf/platform';
import { Stage, StageEvent, StageWork } from '@rlhf/proto';
import { startStageWorker } from '@rlhf/service-kit';
import { startCli } from '../helpers/cli.js';
import { recordRun } from '../helpers/run-record.js';

let server: LocalNatsServer;
let nc: NatsConnection;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-nats-ns-'));
  server = await startLocalNatsServer();
  nc = await connectNats({
    url: server.url,
    name: 'ns-test',
    logger: createLogger('test', { level: 'warn' }),
  });
});

after(async () => {
  await nc?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Waits until the TRAIN consumer holds nothing to deliver or redeliver (a term reaches the server late). */
async function settled(jsm: JetStreamManager): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const info = await jsm.consumers.info(streams.work, workConsumerName('train'));
    if (info.num_pending + info.num_ack_pending === 0) return;
    assert.ok(Date.now() < deadline, `still pending: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function trainWork(namespace: string, run: string, output: string, runUid = ''): StageWork {
  return StageWork.fromPartial({
    key: { namespace, run, iteration: 1, stage: Stage.STAGE_TRAIN, runUid },
    shardIndex: 0,
    shardCount: 1,
    inputUri: pathToFileURL(join(dir, 'pairs.jsonl')).href,
    outputUri: pathToFileURL(output).href,
    params: {
      $case: 'train',
      value: { baseModel: { uri: pathToFileURL(join(dir, 'policy')).href, revision: '' } },
    },
  });
}

test('subjects carry the namespace; a stage filter takes every namespace and nothing else', () => {
  const subject = workSubject('team-a', 'train', 'run-1', 2);
  assert.equal(subject, 'rlhf.work.team-a.train.run-1.2');
  assert.deepEqual(parseWorkSubject(subject), {
    namespace: 'team-a',
    stage: 'train',
    run: 'run-1',
    iteration: 2,
  });
  assert.equal(workFilter('train'), 'rlhf.work.*.train.>');
  assert.equal(parseWorkSubject('rlhf.work.train.run-1.2'), null, 'the layout without a namespace');
  assert.equal(parseWorkSubject('rlhf.work.team-a.nope.run-1.2'), null);
  assert.throws(
    () => workSubject('Team_A', 'train', 'r', 1),
    (e: Error & { field?: string }) => e.field === 'namespace',
  );
  assert.notEqual(shardMsgId('team-a', 'train', 'r', 1, 0), shardMsgId('team-b', 'train', 'r', 1, 0));
});

test('stray work is terminated and logged with its subject, never executed; recorded work runs', async () => {
  const { js, jsm } = await openJetStream(nc);
  await ensureStreams(jsm);
  const lines = new PassThrough();
  let logs = '';
  lines.on('data', (d: Buffer) => {
    logs += d.toString();
  });
  const executed: string[] = [];
  const worker = await startStageWorker({
    nats: nc,
    stage: Stage.STAGE_TRAIN,
    logger: createLogger('train-worker', { level: 'info', destination: lines }),
    ackWaitMs: 10_000,
    handle: async (work) => {
      // What a trainer does with a shard: write its output where the work says.
      const out = new URL(work.outputUri);
      await writeFile(out, 'model');
      executed.push(work.key?.run ?? '');
      return { outputUri: work.outputUri, items: 1 };
    },
  });
  const outDir = join(dir, 'out');
  await rm(outDir, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(outDir));
  const events: StageEvent[] = [];
  const sub = nc.subscribe('rlhf.events.>');
  void (async () => {
    for await (const m of sub) events.push(StageEvent.decode(m.data));
  })();
  try {
    const cases: Array<[string, string, StageWork]> = [
      // Nobody started this run: no record.
      [
        'unknown run',
        workSubject('default', 'train', 'stray', 1),
        trainWork('default', 'stray', join(outDir, 'a')),
      ],
      // A recorded run's subject, but a key naming another namespace's run.
      [
        'key disagrees',
        workSubject('default', 'train', 'known', 1),
        trainWork('team-b', 'known', join(outDir, 'b')),
      ],
      // Left over from an earlier incarnation of the run (started afresh since).
      [
        'earlier run_uid',
        workSubject('default', 'train', 'known', 1),
        trainWork('default', 'known', join(outDir, 'c'), 'e0'),
      ],
    ];
    await recordRun(nc, 'known', 'default', 'e1');
    for (const [i, [, subject, work]] of cases.entries())
      await publishWork(js, subject, StageWork.encode(work).finish(), `stray-${i}`);
    const legit = trainWork('default', 'known', join(outDir, 'ok'), 'e1');
    await publishWork(
      js,
      workSubject('default', 'train', 'known', 1),
      StageWork.encode(legit).finish(),
      'legit',
    );

    const deadline = Date.now() + 15_000;
    while (executed.length < 1 || (logs.match(/stray stage work/g) ?? []).length < 3) {
      assert.ok(Date.now() < deadline, `worker did not get through the shards; logs: ${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(executed, ['known'], 'only the recorded run executes');
    assert.deepEqual(await readdir(outDir), ['ok'], 'stray work wrote nothing');
    for (const [, subject] of cases) assert.ok(logs.includes(`"subject":"${subject}"`), `logged: ${subject}`);
    assert.match(logs, /has no record in KV/);
    assert.match(logs, /its key names another namespace, run or iteration than its subject/);
    assert.match(logs, /its run_uid is not that of run default\/known/);
    // Terminated: nothing is left to redeliver, and no stage event claims the stray shards started.
    await settled(jsm);
    const started = events.filter((e) => e.event?.$case === 'started').map((e) => e.key?.run);
    assert.deepEqual(started, ['known']);
  } finally {
    sub.unsubscribe();
    await worker.stop();
  }
});

test('a running `rlhf serve dpo-trainer` terminates a stray TRAIN shard and writes nothing', async () => {
  const { js, jsm } = await openJetStream(nc);
  const { child, output } = await startCli(
    [
      'serve',
      'dpo-trainer',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--metrics-port',
      'off',
      '--nats-url',
      server.url,
    ],
    /dpo-trainer listening on/,
    { LOG_LEVEL: 'info', RLHF_WORK_DIR: join(dir, 'work') },
  );
  try {
    const target = join(dir, 'victim');
    const subject = workSubject('default', 'train', 'nobody-started-this', 1);
    await publishWork(
      js,
      subject,
      StageWork.encode(trainWork('default', 'nobody-started-this', target)).finish(),
      'stray-cli',
    );
    const deadline = Date.now() + 15_000;
    while (!output().includes('stray stage work')) {
      assert.ok(Date.now() < deadline, `no stray-work line; output: ${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(output().includes(subject), output());
    await assert.rejects(readdir(target), /ENOENT/);
    await settled(jsm);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('a work consumer without namespaces (an older version) is replaced by the namespaced one', async () => {
  const { js, jsm } = await openJetStream(nc);
  await ensureStreams(jsm);
  const name = workConsumerName('pair');
  await jsm.consumers.add(streams.work, {
    durable_name: name,
    filter_subject: 'rlhf.work.pair.>',
    ack_policy: AckPolicy.Explicit,
  });
  await ensureWorkConsumer({ nc, js, jsm }, 'pair');
  const info = await jsm.consumers.info(streams.work, name);
  assert.equal(info.config.filter_subject, 'rlhf.work.*.pair.>');
});
