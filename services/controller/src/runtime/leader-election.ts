/**
 * Leader election over a coordination.k8s.io/v1 Lease, after client-go's leaderelection: candidates
 * read the Lease and write it back with the resourceVersion they read, so of two concurrent takeovers
 * one gets a 409 and stays a candidate. The leader renews every retryPeriod and gives up leadership when
 * it has not renewed for renewDeadline (or sees another holder), before its lease can expire
 * for the others. After losing, it is a candidate again; stop() releases the Lease so the next
 * candidate need not wait out leaseDuration.
 */
import {
  CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
  V1MicroTime,
} from '@kubernetes/client-node';
import { invalidArgument } from '@rlhf/platform';
import { type RuntimeLogger, silentLogger } from './logger.js';

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  /** Name of the Lease, e.g. `rlhf-controller`. */
  name: string;
  /** Unique per candidate (pod name, or hostname plus a random suffix). */
  identity: string;
  /** How long others wait after the last renewal before taking over; a whole number. Default 15. */
  leaseDurationSeconds?: number;
  /** The leader steps down when it has not renewed for this long. Default 10. */
  renewDeadlineSeconds?: number;
  /** Between renewals, and between a candidate's attempts (jittered up to +20%). Default 2. */
  retryPeriodSeconds?: number;
  logger?: RuntimeLogger;
  /** Called on becoming leader (not awaited); `signal` aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called when leadership ends: renewal failed, another holder was seen, or stop(). */
  onStoppedLeading: () => void;
}

export interface LeaderElection {
  isLeader(): boolean;
  /** Stops campaigning; if leading, calls onStoppedLeading and releases the Lease. */
  stop(): Promise<void>;
}

type Attempt = 'leading' | 'held-by-other' | 'conflict';

const statusCode = (err: unknown): number | undefined => (err as { code?: unknown } | null)?.code as number;

/** Wall-clock ms of a Lease time: client-node 1.4 leaves MicroTime fields as the JSON string. */
const timeOf = (t: V1MicroTime | string | undefined): number =>
  t === undefined ? Number.NaN : new Date(t).getTime();

export function startLeaderElection(o: LeaderElectionOptions): LeaderElection {
  const log = o.logger ?? silentLogger;
  const leaseDurationSeconds = o.leaseDurationSeconds ?? 15;
  const renewDeadlineMs = (o.renewDeadlineSeconds ?? 10) * 1000;
  const retryPeriodMs = (o.retryPeriodSeconds ?? 2) * 1000;
  if (!Number.isInteger(leaseDurationSeconds) || leaseDurationSeconds < 1)
    throw invalidArgument('leaseDurationSeconds', 'must be a whole number of seconds, at least 1');
  if (!(renewDeadlineMs < leaseDurationSeconds * 1000))
    throw invalidArgument('renewDeadlineSeconds', 'must be less than leaseDurationSeconds', 'e.g. 10 for 15');
  if (!(retryPeriodMs > 0 && retryPeriodMs * 1.2 < renewDeadlineMs))
    throw invalidArgument(
      'retryPeriodSeconds',
      'must be positive and below renewDeadlineSeconds / 1.2',
      'e.g. 2 for 10',
    );
  if (!o.identity) throw invalidArgument('identity', 'must not be empty', 'use the pod name');

  const api = o.kc.makeApiClient(CoordinationV1Api);
  const ref = { namespace: o.namespace, name: o.name };
  const ctx = { lease: `${o.namespace}/${o.name}`, identity: o.identity };
  let leading = false;
  let stopping = false;
  let term: AbortController | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const mySpec = (now: V1MicroTime, previous: V1LeaseSpec | undefined): V1LeaseSpec => {
    if (previous?.holderIdentity === o.identity) return { ...previous, leaseDurationSeconds, renewTime: now };
    return {
      holderIdentity: o.identity,
      leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: previous ? (previous.leaseTransitions ?? 0) + 1 : 0,
    };
  };

  const tryAcquireOrRenew = async (): Promise<Attempt> => {
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease(ref);
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      try {
        const body = { metadata: { ...ref }, spec: mySpec(new V1MicroTime(), undefined) };
        await api.createNamespacedLease({ namespace: o.namespace, body });
        return 'leading';
      } catch (e) {
        if (statusCode(e) === 409) return 'conflict';
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const expiresAt = timeOf(spec.renewTime) + (spec.leaseDurationSeconds ?? 0) * 1000;
    // A NaN expiry (no renewTime) counts as expired.
    if (holder && holder !== o.identity && expiresAt >= Date.now()) return 'held-by-other';
    try {
      await api.replaceNamespacedLease({ ...ref, body: { ...lease, spec: mySpec(new V1MicroTime(), spec) } });
      return 'leading';
    } catch (e) {
      if (statusCode(e) === 409) return 'conflict';
      throw e;
    }
  };

  const armDeadline = () => {
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(() => loseLeadership('not renewed within renewDeadline'), renewDeadlineMs);
  };

  const becomeLeader = () => {
    leading = true;
    term = new AbortController();
    const signal = term.signal;
    log.info(ctx, 'became leader');
    Promise.resolve()
      .then(() => o.onStartedLeading(signal))
      .catch((err: unknown) => log.warn({ ...ctx, err }, 'onStartedLeading failed'));
  };

  const loseLeadership = (why: string) => {
    if (!leading) return;
    leading = false;
    clearTimeout(deadlineTimer);
    term?.abort(new Error(`leadership of ${ctx.lease} lost: ${why}`));
    log.warn({ ...ctx, why }, 'stopped leading');
    try {
      o.onStoppedLeading();
    } catch (err) {
      log.warn({ ...ctx, err }, 'onStoppedLeading threw');
    }
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const campaign = async () => {
    let retryAtOnce = false;
    while (!stopping) {
      let attempt: Attempt | undefined;
      try {
        attempt = await tryAcquireOrRenew();
      } catch (err) {
        log.warn({ ...ctx, err }, leading ? 'lease renewal failed' : 'lease acquisition failed');
      }
      if (stopping) break;
      if (attempt === 'leading') {
        armDeadline();
        if (!leading) becomeLeader();
      } else if (attempt === 'held-by-other') loseLeadership('the lease is held by another candidate');
      // After a 409 the next read shows who won; ask at once, but only once in a row.
      if (attempt === 'conflict' && !retryAtOnce) {
        retryAtOnce = true;
        continue;
      }
      retryAtOnce = false;
      await sleep(leading ? retryPeriodMs : retryPeriodMs * (1 + Math.random() * 0.2));
    }
  };

  const release = async () => {
    try {
      const lease = await api.readNamespacedLease(ref);
      if (lease.spec?.holderIdentity !== o.identity) return;
      const now = new V1MicroTime();
      const spec: V1LeaseSpec = {
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: lease.spec.leaseTransitions ?? 0,
      };
      await api.replaceNamespacedLease({ ...ref, body: { ...lease, spec } });
      log.info(ctx, 'released lease');
    } catch (err) {
      log.warn({ ...ctx, err }, 'could not release lease; others take over when it expires');
    }
  };

  const running = campaign();
  let stopped: Promise<void> | undefined;
  return {
    isLeader: () => leading,
    stop: () => {
      stopped ??= (async () => {
        stopping = true;
        wake?.();
        await running;
        loseLeadership('stopped');
        await release();
      })();
      return stopped;
    },
  };
}
