/**
 * A pod's volumes made real on the host, before its first container starts: each becomes a host directory
 * that containers bind-mount at their mountPaths (see mount-command.ts).
 *
 * - emptyDir: a per-pod directory; with medium Memory a tmpfs is mounted on it (unmounted when the pod ends).
 * - secret, configMap, downwardAPI, projected (secret, configMap, downwardAPI, serviceAccountToken sources):
 *   files written per pod with `items` and `defaultMode`/`mode`, mounted read-only as the kubelet does. The
 *   ServiceAccount admission plugin turns automountServiceAccountToken into such a projected volume (a token
 *   from the TokenRequest API bound to the pod, the kube-root-ca.crt ConfigMap's ca.crt, the namespace), so
 *   /var/run/secrets/kubernetes.io/serviceaccount is served by this code, not a special case.
 * - persistentVolumeClaim: the bound PersistentVolume's hostPath or local path.
 * - hostPath: the path itself (type DirectoryOrCreate / FileOrCreate creates it).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import type { JsonObject } from '../../kube/fake-api-server/index.js';
import { fieldRef } from '../../kube/fake-kubelet/container-env.js';
import type { NodeApi } from './node-api.js';
import { getObject, nodeRequest, PodConfigError } from './pod-objects.js';

export interface HostVolume {
  path: string;
  readOnly: boolean;
}

export interface PodVolumes {
  byName: Map<string, HostVolume>;
  /** Unmounts tmpfs emptyDirs. */
  release(): void;
}

interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

interface Volume {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  secret?: { secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  configMap?: { name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  downwardAPI?: { items?: DownwardItem[]; defaultMode?: number };
  projected?: { sources?: ProjectedSource[]; defaultMode?: number };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  hostPath?: { path: string; type?: string };
}

interface DownwardItem {
  path: string;
  fieldRef?: { fieldPath: string };
  mode?: number;
}

interface ProjectedSource {
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  downwardAPI?: { items?: DownwardItem[] };
  serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
}

const defaultFileMode = 0o644;

interface PodRef {
  pod: JsonObject;
  namespace: string;
  name: string;
  uid: string;
}

/** A relative path inside a volume: no absolute paths, no `..` escaping it. */
function inside(dir: string, rel: string, field: string): string {
  const clean = normalize(rel);
  if (clean.startsWith('/') || clean === '..' || clean.startsWith('../')) {
    throw new PodConfigError(`${field}: path "${rel}" must be relative and stay inside the volume`);
  }
  return join(dir, clean);
}

function writeFile(dir: string, rel: string, content: Buffer | string, mode: number, field: string): void {
  const file = inside(dir, rel, field);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

/** Secret or ConfigMap data as bytes per key. */
function dataOf(obj: JsonObject, secret: boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, string>)) {
    out.set(k, secret ? Buffer.from(v, 'base64') : Buffer.from(v, 'utf8'));
  }
  for (const [k, v] of Object.entries((obj.binaryData ?? {}) as Record<string, string>)) {
    out.set(k, Buffer.from(v, 'base64'));
  }
  return out;
}

async function writeKeys(
  api: NodeApi,
  ref: PodRef,
  dir: string,
  kind: 'secrets' | 'configmaps',
  name: string,
  items: KeyToPath[] | undefined,
  optional: boolean,
  mode: number,
  field: string,
): Promise<void> {
  const obj = await getObject(api, ref.namespace, kind, name);
  if (!obj) {
    if (optional) return;
    throw new PodConfigError(`${field}: ${kind === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
  }
  const data = dataOf(obj, kind === 'secrets');
  if (!items) {
    for (const [key, value] of data) writeFile(dir, key, value, mode, field);
    return;
  }
  for (const item of items) {
    const value = data.get(item.key);
    if (value === undefined) {
      if (optional) continue;
      throw new PodConfigError(`${field}: key "${item.key}" not in ${kind} ${ref.namespace}/${name}`);
    }
    writeFile(dir, item.path, value, item.mode ?? mode, field);
  }
}

function writeDownward(ref: PodRef, dir: string, items: DownwardItem[], mode: number, field: string): void {
  for (const item of items) {
    if (!item.fieldRef)
      throw new PodConfigError(`${field}: only fieldRef items are supported by the node agent`);
    const path = item.fieldRef.fieldPath;
    const meta = ref.pod.metadata as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    const whole =
      path === 'metadata.labels'
        ? meta.labels
        : path === 'metadata.annotations'
          ? meta.annotations
          : undefined;
    const value = whole
      ? Object.entries(whole)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join('\n')
      : fieldRef(ref.pod, path);
    writeFile(dir, item.path, value, item.mode ?? mode, field);
  }
}

async function writeToken(
  api: NodeApi,
  ref: PodRef,
  dir: string,
  source: NonNullable<ProjectedSource['serviceAccountToken']>,
  mode: number,
  field: string,
): Promise<void> {
  const sa = (ref.pod.spec as { serviceAccountName?: string }).serviceAccountName ?? 'default';
  const res = await nodeRequest(
    api,
    'POST',
    `/api/v1/namespaces/${ref.namespace}/serviceaccounts/${sa}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: source.audience ? [source.audience] : [],
        expirationSeconds: source.expirationSeconds ?? 3607,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: ref.name, uid: ref.uid },
      },
    },
  );
  const token = (res.body as { status?: { token?: string } }).status?.token;
  if (res.status !== 201 || !token) {
    throw new PodConfigError(
      `${field}: TokenRequest for serviceaccount ${ref.namespace}/${sa} failed (${res.status}): ${JSON.stringify(res.body)}`,
    );
  }
  writeFile(dir, source.path, token, mode, field);
}

async function pvcPath(api: NodeApi, ref: PodRef, claim: string, field: string): Promise<string> {
  const pvc = await getObject(api, ref.namespace, 'persistentvolumeclaims', claim);
  const volumeName = (pvc?.spec as { volumeName?: string } | undefined)?.volumeName;
  if (!pvc || !volumeName) throw new PodConfigError(`${field}: claim "${claim}" is missing or not bound`);
  const res = await nodeRequest(api, 'GET', `/api/v1/persistentvolumes/${volumeName}`);
  if (res.status !== 200) {
    throw new PodConfigError(`${field}: reading PersistentVolume ${volumeName} failed (${res.status})`);
  }
  const spec = (res.body as { spec?: { hostPath?: { path: string }; local?: { path: string } } }).spec ?? {};
  const path = spec.hostPath?.path ?? spec.local?.path;
  if (!path)
    throw new PodConfigError(`${field}: PersistentVolume ${volumeName} is neither hostPath nor local`);
  mkdirSync(path, { recursive: true });
  return path;
}

export async function preparePodVolumes(api: NodeApi, pod: JsonObject, podDir: string): Promise<PodVolumes> {
  const meta = pod.metadata as { namespace: string; name: string; uid: string };
  const ref: PodRef = { pod, namespace: meta.namespace, name: meta.name, uid: meta.uid };
  const volumes = ((pod.spec as { volumes?: Volume[] }).volumes ?? []) as Volume[];
  const byName = new Map<string, HostVolume>();
  const tmpfs: string[] = [];
  const release = () => {
    for (const dir of tmpfs.splice(0)) {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      } catch {
        // already unmounted
      }
    }
  };
  try {
    for (const [i, v] of volumes.entries()) {
      const field = `spec.volumes[${i}] (${v.name})`;
      const dir = join(podDir, 'volumes', v.name);
      if (v.emptyDir) {
        mkdirSync(dir, { recursive: true });
        if (v.emptyDir.medium === 'Memory') {
          const size = v.emptyDir.sizeLimit ? [`-o`, `size=${v.emptyDir.sizeLimit.replace(/i$/, '')}`] : [];
          execFileSync('mount', ['-t', 'tmpfs', ...size, 'tmpfs', dir]);
          tmpfs.push(dir);
        }
        byName.set(v.name, { path: dir, readOnly: false });
      } else if (v.secret || v.configMap) {
        mkdirSync(dir, { recursive: true });
        const s = v.secret;
        const c = v.configMap;
        await writeKeys(
          api,
          ref,
          dir,
          s ? 'secrets' : 'configmaps',
          s ? s.secretName : c!.name,
          (s ?? c)!.items,
          (s ?? c)!.optional === true,
          (s ?? c)!.defaultMode ?? defaultFileMode,
          field,
        );
        byName.set(v.name, { path: dir, readOnly: true });
      } else if (v.downwardAPI) {
        mkdirSync(dir, { recursive: true });
        writeDownward(
          ref,
          dir,
          v.downwardAPI.items ?? [],
          v.downwardAPI.defaultMode ?? defaultFileMode,
          field,
        );
        byName.set(v.name, { path: dir, readOnly: true });
      } else if (v.projected) {
        mkdirSync(dir, { recursive: true });
        const mode = v.projected.defaultMode ?? defaultFileMode;
        for (const source of v.projected.sources ?? []) {
          if (source.secret || source.configMap) {
            const r = (source.secret ?? source.configMap)!;
            const kind = source.secret ? 'secrets' : 'configmaps';
            await writeKeys(api, ref, dir, kind, r.name, r.items, r.optional === true, mode, field);
          } else if (source.downwardAPI) writeDownward(ref, dir, source.downwardAPI.items ?? [], mode, field);
          else if (source.serviceAccountToken)
            await writeToken(api, ref, dir, source.serviceAccountToken, mode, field);
          else
            throw new PodConfigError(`${field}: projected source ${Object.keys(source)[0]} is not supported`);
        }
        byName.set(v.name, { path: dir, readOnly: true });
      } else if (v.persistentVolumeClaim) {
        const path = await pvcPath(api, ref, v.persistentVolumeClaim.claimName, field);
        byName.set(v.name, { path, readOnly: v.persistentVolumeClaim.readOnly === true });
      } else if (v.hostPath) {
        const type = v.hostPath.type ?? '';
        if (type === 'DirectoryOrCreate') mkdirSync(v.hostPath.path, { recursive: true });
        if (type === 'FileOrCreate' && !existsSync(v.hostPath.path)) {
          mkdirSync(dirname(v.hostPath.path), { recursive: true });
          writeFileSync(v.hostPath.path, '');
        }
        if (!existsSync(v.hostPath.path)) {
          throw new PodConfigError(`${field}: hostPath ${v.hostPath.path} does not exist (type "${type}")`);
        }
        byName.set(v.name, { path: v.hostPath.path, readOnly: false });
      } else {
        throw new PodConfigError(
          `${field}: volume type ${Object.keys(v).filter((k) => k !== 'name')[0]} is not supported by the node agent`,
        );
      }
    }
  } catch (e) {
    release();
    throw e;
  }
  return { byName, release };
}
