/**
 * The per-namespace NATS permissions of docs/KUBERNETES.md, run as written by a real nats-server: the
 * platform user sets up the streams and the state bucket; a team-a client publishes work, follows events and
 * writes run records of team-a, and every attempt at team-b's subjects is a permissions violation.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  buckets,
  connectNats,
  createLogger,
  ensureStreams,
  type LocalNatsServer,
  type NatsConnection,
  openJetStream,
  openStateKv,
  runRecordKey,
  startLocalNatsServer,
  workSubject,
} from '@rlhf/platform';
import { writeServerConfig } from '../helpers/nats-secure.js';

const docs = new URL('../../docs/KUBERNETES.md', import.meta.url);
const passwords = {
  RLHF_PLATFORM_PASSWORD: 'platform-pw-41d2',
  TEAM_A_PASSWORD: 'team-a-pw-7be0',
  TEAM_B_PASSWORD: 'team-b-pw-c913',
};
const logger = createLogger('test', { level: 'fatal' });

let dir: string;
let server: LocalNatsServer;
let teamA: NatsConnection;

/** The ```conf block of the docs' per-namespace permissions section. */
async function docsConfig(): Promise<string> {
  const text = await readFile(docs, 'utf8');
  const section = text.slice(text.indexOf('## NATS credentials and per-namespace permissions'));
  const block = /```conf\n([\s\S]*?)```/.exec(section);
  assert.ok(block?.[1], 'docs/KUBERNETES.md has the nats-server config block');
  return block[1];
}

const user = (name: string, pw: string) => `nats://${name}:${pw}@`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-nats-perm-'));
  // nats-server reads $VARIABLES of its config from its environment.
  Object.assign(process.env, passwords);
  server = await startLocalNatsServer({
    configFile: await writeServerConfig(dir, 'docs', await docsConfig()),
  });
  const platform = await connectNats({
    url: server.url.replace('nats://', user('rlhf-platform', passwords.RLHF_PLATFORM_PASSWORD)),
    name: 'platform',
    logger,
  });
  await ensureStreams((await openJetStream(platform)).jsm);
  await openStateKv(platform);
  await platform.close();
  teamA = await connectNats({
    url: server.url.replace('nats://', user('team-a', passwords.TEAM_A_PASSWORD)),
    name: 'team-a',
    logger,
  });
});

after(async () => {
  await teamA?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

const denied = (e: unknown) =>
  /permission/i.test(`${(e as Error).message} ${String((e as Error).cause ?? '')}`);

test('team-a publishes work for its own namespace; work for team-b is a permissions violation', async () => {
  const js = jetstream(teamA, { timeout: 3000 });
  const ack = await js.publish(workSubject('team-a', 'generate', 'demo', 1), 'shard', { msgID: 'a-1' });
  assert.ok(ack.seq > 0);
  await assert.rejects(js.publish(workSubject('team-b', 'generate', 'demo', 1), 'shard'), denied);
});

test('team-a writes and reads its run records; a record in team-b is refused', async () => {
  // Direct get: its API subject names the key, so a grant can be scoped to the namespace (STREAM.MSG.GET cannot).
  const kv = await new Kvm(teamA).open(buckets.state, { allow_direct: true });
  await kv.put(runRecordKey('team-a', 'demo'), '{"phase":"Running"}');
  assert.equal((await kv.get(runRecordKey('team-a', 'demo')))?.string(), '{"phase":"Running"}');
  await assert.rejects(kv.put(runRecordKey('team-b', 'demo'), '{"phase":"Running"}'), denied);
});

test("team-a follows its own events; a subscription to team-b's is refused", async () => {
  const errors: string[] = [];
  void (async () => {
    for await (const s of teamA.status()) if (s.type === 'error') errors.push(String(s.error));
  })();
  const own = teamA.subscribe('rlhf.events.team-a.>');
  const other = teamA.subscribe('rlhf.events.team-b.>');
  await teamA.flush();
  const deadline = Date.now() + 3000;
  while (!errors.some((e) => /permission/i.test(e) && e.includes('rlhf.events.team-b.>'))) {
    assert.ok(Date.now() < deadline, `no permissions violation reported: ${errors.join('; ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(!errors.some((e) => e.includes('rlhf.events.team-a.>')), errors.join('; '));
  own.unsubscribe();
  other.unsubscribe();
});
