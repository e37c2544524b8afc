/**
 * Signals to a container's process group: each container is spawned detached (its own group), so
 * whatever it starts is signalled with it, as a runtime signals everything in a container.
 */
import type { ChildProcess } from 'node:child_process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL to a process group until no member is left (at most ~2 s). */
export async function reapGroup(pgid: number): Promise<void> {
  for (let i = 0; i < 40; i++) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      return;
    }
    await sleep(50);
  }
}

export function signalGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
