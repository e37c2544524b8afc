/**
 * A container's command line wrapped to run in its own mount namespace: `unshare -m --propagation private`
 * runs a short sh script that bind-mounts each volume at its mountPath (read-only ones remounted ro), the
 * pod's /etc/hosts over the host's, and an empty directory over ~/.kube (so in-cluster config is what a
 * client finds, as in a container), then execs the command. The mounts vanish with the namespace; the host
 * sees none of them.
 *
 * A mountPath missing on the host is created there (an empty directory, or an empty file for a file
 * subPath), because a bind mount needs an existing target and the container shares the host's root.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { PodConfigError } from './pod-objects.js';
import type { HostVolume } from './pod-volumes.js';

export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}

export interface Bind {
  source: string;
  target: string;
  readOnly: boolean;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function ensureTarget(target: string, isFile: boolean): void {
  if (existsSync(target)) return;
  if (isFile) {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, '');
  } else mkdirSync(target, { recursive: true });
}

/** The binds for one container, parents before children. */
export function containerBinds(
  mounts: VolumeMount[],
  volumes: Map<string, HostVolume>,
  hostsFile: string,
  maskDir: string,
  field: string,
): Bind[] {
  const binds: Bind[] = [{ source: hostsFile, target: '/etc/hosts', readOnly: false }];
  const kubeDir = join(homedir(), '.kube');
  if (existsSync(kubeDir)) binds.push({ source: maskDir, target: kubeDir, readOnly: true });
  for (const [i, m] of mounts.entries()) {
    const volume = volumes.get(m.name);
    if (!volume) throw new PodConfigError(`${field}.volumeMounts[${i}]: no volume named "${m.name}"`);
    if (!m.mountPath.startsWith('/')) {
      throw new PodConfigError(`${field}.volumeMounts[${i}].mountPath: "${m.mountPath}" must be absolute`);
    }
    let source = volume.path;
    if (m.subPath) {
      if (m.subPath.startsWith('/') || m.subPath.split('/').includes('..')) {
        throw new PodConfigError(
          `${field}.volumeMounts[${i}].subPath: "${m.subPath}" must stay inside the volume`,
        );
      }
      source = join(volume.path, m.subPath);
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
    }
    ensureTarget(m.mountPath, statSync(source).isFile());
    binds.push({ source, target: m.mountPath, readOnly: volume.readOnly || m.readOnly === true });
  }
  return binds.sort((a, b) => a.target.split('/').length - b.target.split('/').length);
}

/** Where the mount script stages the bind sources, inside the container's own mount namespace only. */
export const stagingDir = '/run/rlhf-node-agent-staging';

/**
 * `unshare ... sh -c <mount script> sh <argv...>`: argv runs with the binds in place, in `workingDir`
 * (entered after mounting, so a workingDir under a mountPath is the volume, not the host directory below it).
 */
export function mountedCommand(binds: Bind[], argv: string[], workingDir: string): string[] {
  const lines = [
    'set -e',
    // Every source is bound onto a private staging tmpfs before any target is mounted: the sources live
    // under the host's temp directory, so a volume mounted at /tmp (the chart's emptyDir) would otherwise
    // hide the sources of the binds after it, the pod's own /etc/hosts included.
    `S=${quote(stagingDir)}`,
    'mkdir -p "$S"',
    'mount -t tmpfs -o size=1m,mode=0700 node-agent-staging "$S"',
    's() { if [ -d "$1" ]; then mkdir "$S/$2"; else : > "$S/$2"; fi; mount --bind "$1" "$S/$2"; }',
    ...binds.map((b, i) => `s ${quote(b.source)} ${i}`),
    'b() { if [ ! -e "$2" ]; then if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; : > "$2"; fi; fi; mount --bind "$1" "$2"; if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi; }',
    ...binds.map((b, i) => `b "$S/${i}" ${quote(b.target)} ${b.readOnly ? 'ro' : 'rw'}`),
    `mkdir -p ${quote(workingDir)}`,
    `cd ${quote(workingDir)}`,
    'exec "$@"',
  ];
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', lines.join('\n'), 'sh', ...argv];
}
