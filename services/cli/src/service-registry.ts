/**
 * The services `rlhf serve` can run, by the name users type. Each entry's name and summary come from the
 * service's `info` module, which loads nothing; the service itself is imported only when it is served, so
 * `rlhf --help` and a worker serving one service do not load the other three.
 */
import { serviceInfo as dpoTrainer } from '@rlhf/dpo-trainer/info';
import type { InProcessHost, InProcessServices } from '@rlhf/orchestrator';
import type { Logger, ServiceContext, ServiceModule } from '@rlhf/platform';
import { serviceInfo as policyGenerator } from '@rlhf/policy-generator/info';
import { serviceInfo as preferenceModel } from '@rlhf/preference-model/info';
import { serviceInfo as rewardModel } from '@rlhf/reward-model/info';
import type { StageServiceModule } from '@rlhf/service-kit';

export interface ServiceEntry {
  name: string;
  summary: string;
  load(): Promise<ServiceModule>;
}

export const serviceEntries: readonly ServiceEntry[] = [
  { ...policyGenerator, load: async () => (await import('@rlhf/policy-generator')).policyGeneratorService },
  { ...rewardModel, load: async () => (await import('@rlhf/reward-model')).rewardModelService },
  { ...preferenceModel, load: async () => (await import('@rlhf/preference-model')).preferenceModelService },
  { ...dpoTrainer, load: async () => (await import('@rlhf/dpo-trainer')).dpoTrainerService },
];

/** The service a name stands for, loaded; undefined for a name that is none. */
export async function loadService(name: string): Promise<ServiceModule | undefined> {
  return serviceEntries.find((s) => s.name === name)?.load();
}

/** Every service, loaded (tests, and anything that needs them all). */
export function loadAllServices(): Promise<ServiceModule[]> {
  return Promise.all(serviceEntries.map((s) => s.load()));
}

/**
 * Every service with stage work, built for a run in this process (`rlhf quickstart`): each hands its shard
 * handlers to the in-process executor, the same handlers its NATS workers serve under `rlhf run`.
 */
export async function loadInProcessServices(host: InProcessHost, logger: Logger): Promise<InProcessServices> {
  const [{ Registry }, pg, rm, pm, dpo] = await Promise.all([
    import('prom-client'),
    import('@rlhf/policy-generator'),
    import('@rlhf/reward-model'),
    import('@rlhf/preference-model'),
    import('@rlhf/dpo-trainer'),
  ]);
  const training = { workDir: host.workDir };
  const modules: StageServiceModule[] = [
    pg.createPolicyGeneratorService(),
    rm.createRewardModelService({ training }),
    pm.createPreferenceModelService({ training }),
    dpo.createDpoTrainerService(training),
  ];
  // No NATS: `start` serves no queue, and its stop function releases the models and jobs the handlers hold.
  // Each service its own context (its metrics register names another service registers too).
  const contexts = new Map<StageServiceModule, ServiceContext>(
    modules.map((m) => [
      m,
      { logger, metrics: new Registry(), nats: null, sandbox: host.sandbox, artifacts: host.store },
    ]),
  );
  const ctxOf = (m: StageServiceModule) => contexts.get(m) as ServiceContext;
  const stops: Array<() => Promise<void>> = [];
  try {
    for (const m of modules) if (m.start) stops.push(await m.start(ctxOf(m)));
  } catch (err) {
    for (const stop of stops.reverse()) await stop();
    throw err;
  }
  return {
    handlers: modules.flatMap((m) => m.shardHandlers(ctxOf(m))),
    stop: async () => {
      for (const stop of stops.reverse()) await stop();
    },
  };
}
