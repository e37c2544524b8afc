/** The pods/status a node reports: phase, conditions and per-container states, built from what runs. */
import type { JsonObject } from '../../kube/fake-api-server/index.js';

export const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export interface ContainerRecord {
  name: string;
  image: string;
  pid?: number;
  restartCount: number;
  ready: boolean;
  /** False while a startup probe has not passed; otherwise running means started. */
  started?: boolean;
  /** Exactly one of running / waiting / terminated, as in the API. */
  state: JsonObject;
  lastState: JsonObject;
}

export interface PodSnapshot {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  startTime: string;
  initialized: boolean;
  init: ContainerRecord[];
  main: ContainerRecord[];
  scheduledAt: string;
}

function containerStatus(c: ContainerRecord): JsonObject {
  const status: JsonObject = {
    name: c.name,
    image: c.image,
    imageID: '',
    ready: c.ready,
    started: 'running' in c.state && c.started !== false,
    restartCount: c.restartCount,
    state: c.state,
    lastState: c.lastState,
  };
  if (c.pid !== undefined) status.containerID = `process://${c.pid}`;
  return status;
}

/** Condition transition times survive between writes when the status does not change. */
export class PodConditions {
  private readonly since = new Map<string, { status: string; at: string }>();

  build(snapshot: PodSnapshot): JsonObject[] {
    // Sidecars (running init containers) count towards readiness, as the kubelet counts them.
    const sidecars = snapshot.init.filter((c) => 'running' in c.state);
    const ready = snapshot.main.length > 0 && [...snapshot.main, ...sidecars].every((c) => c.ready);
    const wanted: [string, boolean, string?][] = [
      ['PodReadyToStartContainers', true],
      ['Initialized', snapshot.initialized, 'ContainersNotInitialized'],
      ['Ready', ready, snapshot.phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady'],
      ['ContainersReady', ready, snapshot.phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady'],
      ['PodScheduled', true],
    ];
    return wanted.map(([type, ok, reason]) => {
      const status = ok ? 'True' : 'False';
      const prior = this.since.get(type);
      const at =
        prior && prior.status === status ? prior.at : type === 'PodScheduled' ? snapshot.scheduledAt : now();
      this.since.set(type, { status, at });
      const condition: JsonObject = { type, status, lastProbeTime: null, lastTransitionTime: at };
      if (!ok && reason) condition.reason = reason;
      return condition;
    });
  }
}

export function podStatus(snapshot: PodSnapshot, conditions: PodConditions): JsonObject {
  return {
    phase: snapshot.phase,
    startTime: snapshot.startTime,
    hostIP: '127.0.0.1',
    hostIPs: [{ ip: '127.0.0.1' }],
    podIP: '127.0.0.1',
    podIPs: [{ ip: '127.0.0.1' }],
    conditions: conditions.build(snapshot),
    initContainerStatuses: snapshot.init.map(containerStatus),
    containerStatuses: snapshot.main.map(containerStatus),
  };
}
