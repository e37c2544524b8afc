/** startLeaderElection against the fake API server's Leases over HTTP: one leader, handover, loss. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type LeaderElection,
  type LeaderElectionOptions,
  startLeaderElection,
} from '../../../services/controller/src/runtime/index.js';
import { FakeApiServer, fakeKubeConfig, type JsonObject } from '../../kube/fake-api-server/index.js';
import { until as untilWithin } from '../../kube/fixtures/clients.js';

/** Everything here happens within milliseconds; a short limit makes a regression fail fast. */
const until = <T>(probe: () => T | Promise<T>, what: string, limitMs = 5000) =>
  untilWithin(probe, what, limitMs);

const LEASES = 'leases.coordination.k8s.io';
const ns = 'rlhf-system';
let server: FakeApiServer;
before(async () => {
  server = await FakeApiServer.start();
});
const running: LeaderElection[] = [];
after(async () => {
  await Promise.all(running.map((e) => e.stop()));
  await server.stop();
});

/** A candidate with test-sized timings that records its callbacks. */
function candidate(
  identity: string,
  lease: string,
  opts: Partial<LeaderElectionOptions> & { on?: FakeApiServer } = {},
) {
  const log: string[] = [];
  const { on = server, ...rest } = opts;
  const election = startLeaderElection({
    kc: fakeKubeConfig(on),
    namespace: ns,
    name: lease,
    identity,
    leaseDurationSeconds: 2,
    renewDeadlineSeconds: 0.5,
    retryPeriodSeconds: 0.1,
    onStartedLeading: () => {
      log.push('started');
    },
    onStoppedLeading: () => log.push('stopped'),
    ...rest,
  });
  running.push(election);
  return { identity, election, log };
}

const leaseSpec = (name: string, on = server) =>
  (on.client.get(LEASES, ns, name) as { spec: JsonObject }).spec as {
    holderIdentity?: string;
    leaseTransitions?: number;
    leaseDurationSeconds?: number;
    renewTime?: string;
    acquireTime?: string;
  };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const microTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe('startLeaderElection', () => {
  test('of two candidates exactly one leads, holds the Lease and keeps renewing it', async () => {
    const a = candidate('a', 'two');
    const b = candidate('b', 'two');
    const leader = await until(() => [a, b].find((x) => x.election.isLeader()), 'a leader');
    const other = leader === a ? b : a;
    const firstRenew = leaseSpec('two').renewTime!;
    for (let i = 0; i < 30; i++) {
      assert.equal(leader.election.isLeader() && !other.election.isLeader(), true, 'exactly one leader');
      await sleep(10);
    }
    const spec = leaseSpec('two');
    assert.equal(spec.holderIdentity, leader.identity);
    assert.equal(spec.leaseTransitions, 0);
    assert.equal(spec.leaseDurationSeconds, 2);
    assert.match(
      spec.renewTime!,
      microTime,
      'MicroTime with six fractional digits, as the apiserver parses it',
    );
    assert.match(spec.acquireTime!, microTime);
    assert.ok(Date.parse(spec.renewTime!) > Date.parse(firstRenew), 'renewed');
    assert.deepEqual(leader.log, ['started']);
    assert.deepEqual(other.log, []);
  });

  test('a leader that stops releases the Lease: the other leads at once, and leaseTransitions counts it', async () => {
    // The lease lasts 5 s, so a takeover well under that can only come from the release.
    const a = candidate('a', 'handover', { leaseDurationSeconds: 5 });
    await until(() => a.election.isLeader(), 'a to lead');
    const b = candidate('b', 'handover', { leaseDurationSeconds: 5 });
    await sleep(200);
    assert.equal(b.election.isLeader(), false, 'b waits while a renews');
    const stoppedAt = Date.now();
    await a.election.stop();
    assert.equal(a.election.isLeader(), false);
    assert.deepEqual(a.log, ['started', 'stopped']);
    await until(() => b.election.isLeader(), 'b to lead', 3000);
    assert.ok(Date.now() - stoppedAt < 1500, `took over after ${Date.now() - stoppedAt} ms`);
    const spec = leaseSpec('handover');
    assert.equal(spec.holderIdentity, 'b');
    assert.equal(spec.leaseTransitions, 1);
  });

  test('a candidate takes over an expired Lease and increments leaseTransitions', async () => {
    const longAgo = '2020-01-01T00:00:00.000000Z';
    server.client.create(LEASES, ns, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'expired' },
      spec: {
        holderIdentity: 'gone',
        leaseDurationSeconds: 15,
        acquireTime: longAgo,
        renewTime: longAgo,
        leaseTransitions: 4,
      },
    });
    const a = candidate('a', 'expired');
    await until(() => a.election.isLeader(), 'a to take the expired lease');
    const spec = leaseSpec('expired');
    assert.equal(spec.holderIdentity, 'a');
    assert.equal(spec.leaseTransitions, 5);
    assert.ok(Date.parse(spec.acquireTime!) > Date.parse(longAgo));
  });

  test('a leader that finds its Lease taken by another holder stops leading at once and stays a candidate', async () => {
    const a = candidate('a', 'stolen', { leaseDurationSeconds: 5, renewDeadlineSeconds: 4 });
    await until(() => a.election.isLeader(), 'a to lead');
    const lease = server.client.get(LEASES, ns, 'stolen');
    const now = new Date().toISOString().replace('Z', '000Z');
    server.client.update(LEASES, ns, {
      ...lease,
      spec: { ...(lease.spec as JsonObject), holderIdentity: 'thief', renewTime: now, acquireTime: now },
    });
    const stolenAt = Date.now();
    await until(() => a.log.includes('stopped'), 'onStoppedLeading', 3000);
    assert.ok(Date.now() - stolenAt < 1000, 'on the next renewal, not after renewDeadline');
    assert.equal(a.election.isLeader(), false);
    await sleep(300);
    assert.deepEqual(a.log, ['started', 'stopped']);
    assert.equal(leaseSpec('stolen').holderIdentity, 'thief');
  });

  test('a leader that cannot reach the apiserver stops leading after renewDeadline; onStartedLeading sees its signal abort', async () => {
    const own = await FakeApiServer.start();
    let signal: AbortSignal | undefined;
    const a = candidate('a', 'unreachable', {
      on: own,
      onStartedLeading: (s) => {
        signal = s;
      },
    });
    await until(() => a.election.isLeader(), 'a to lead');
    const renewedAt = Date.parse(leaseSpec('unreachable', own).renewTime!);
    await own.stop();
    await until(() => a.log.includes('stopped'), 'onStoppedLeading', 3000);
    const lostAfter = Date.now() - renewedAt;
    assert.ok(lostAfter >= 450 && lostAfter < 1500, `lost ${lostAfter} ms after the last renewal`);
    assert.equal(a.election.isLeader(), false);
    assert.equal(signal?.aborted, true);
    await a.election.stop();
  });

  test('refuses timings that cannot work, naming the option', () => {
    const base = { kc: fakeKubeConfig(server), namespace: ns, name: 'x', identity: 'a' };
    const noop = { onStartedLeading: () => {}, onStoppedLeading: () => {} };
    assert.throws(
      () => startLeaderElection({ ...base, ...noop, leaseDurationSeconds: 10, renewDeadlineSeconds: 10 }),
      { code: 'INVALID_ARGUMENT', field: 'renewDeadlineSeconds' },
    );
    assert.throws(() => startLeaderElection({ ...base, ...noop, leaseDurationSeconds: 1.5 }), {
      code: 'INVALID_ARGUMENT',
      field: 'leaseDurationSeconds',
    });
    assert.throws(() => startLeaderElection({ ...base, ...noop, retryPeriodSeconds: 9 }), {
      code: 'INVALID_ARGUMENT',
      field: 'retryPeriodSeconds',
    });
  });
});
