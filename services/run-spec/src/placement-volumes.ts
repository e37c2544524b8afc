/**
 * spec.placement.volumes: PersistentVolumeClaims of the run's namespace mounted into every stage Job of the
 * run, so that file:// URIs of its models and datasets name files on them. The shape is the chart's
 * `artifacts.volumes` (one volume and its mount in one entry), which the Jobs mount as well; together they
 * are the pods' artifact roots. A file:// input of a cluster run under no mount would fail in the first
 * pod that reads it, so the controller refuses the run instead (unmountedInputs).
 */
import type { SchemaNode } from './schema-types.js';
import type { RlhfRunSpec, RunVolume } from './types.js';
import type { FieldProblem } from './validate.js';

export const volumeNamePattern = '^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$';
const claimNamePattern = '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$';
const mountPathPattern = '^/[^:]*$';

export const placementVolumesSchema: SchemaNode = {
  type: 'array',
  description:
    "PersistentVolumeClaims of the run's namespace mounted into every stage pod; file:// URIs of the run's models and datasets may name files below their mountPath (or below a volume of the chart's artifacts.volumes). Local runs ignore it. An entry: {name: data, claimName: rlhf-data, mountPath: /data, readOnly: true}.",
  items: {
    type: 'object',
    description: 'A PersistentVolumeClaim and where the stage pods mount it.',
    required: ['name', 'claimName', 'mountPath'],
    properties: {
      name: {
        type: 'string',
        description:
          'Name of the volume in the pods: a DNS label of at most 52 characters, unique in the list.',
        pattern: volumeNamePattern,
      },
      claimName: {
        type: 'string',
        description: "An existing PersistentVolumeClaim in the run's namespace.",
        pattern: claimNamePattern,
      },
      mountPath: {
        type: 'string',
        description: 'Absolute path of the mount in the pods, without ":".',
        pattern: mountPathPattern,
      },
      readOnly: { type: 'boolean', description: 'Mount read-only (the run only reads from it).' },
    },
  },
};

const normalMount = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p);
const under = (path: string, root: string): boolean =>
  path === root || path.startsWith(root === '/' ? '/' : `${root}/`);

/** Paths the stage pods use themselves; a run volume must not hide them. */
const reservedMounts = ['/tmp', '/etc/rlhf', '/var/run/secrets'];

/** Names and mount paths that clash: duplicates, a mount inside another, or over a path the pods use. */
export function volumeProblems(volumes: readonly RunVolume[] | undefined): FieldProblem[] {
  const out: FieldProblem[] = [];
  const list = volumes ?? [];
  for (const [i, v] of list.entries()) {
    const path = `spec.placement.volumes[${i}]`;
    const mount = normalMount(v.mountPath);
    if (mount.split('/').includes('..') || mount.split('/').includes('.'))
      out.push({
        path: `${path}.mountPath`,
        message: `${v.mountPath} must not contain "." or ".." segments`,
      });
    if (mount === '/' || reservedMounts.some((r) => under(mount, r) || under(r, mount)))
      out.push({
        path: `${path}.mountPath`,
        message: `${v.mountPath} overlaps a path the stage pods use (${reservedMounts.join(', ')}): mount elsewhere, e.g. /data`,
      });
    for (const [j, w] of list.slice(0, i).entries()) {
      if (w.name === v.name)
        out.push({ path: `${path}.name`, message: `"${v.name}" is also the name of volumes[${j}]` });
      const other = normalMount(w.mountPath);
      if (under(mount, other) || under(other, mount))
        out.push({
          path: `${path}.mountPath`,
          message: `${v.mountPath} overlaps volumes[${j}] at ${w.mountPath}: give each volume its own directory`,
        });
    }
  }
  return out;
}

/**
 * Run volumes whose mountPath overlaps a mount the cluster gives every stage pod already (the chart's
 * artifacts.volumes, the Hugging Face cache): the Job would be invalid or hide that mount.
 */
export function mountClashes(
  volumes: readonly RunVolume[] | undefined,
  podMounts: readonly string[],
): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const [i, v] of (volumes ?? []).entries()) {
    const mount = normalMount(v.mountPath);
    const other = podMounts.map(normalMount).find((m) => under(mount, m) || under(m, mount));
    if (other !== undefined)
      out.push({
        path: `spec.placement.volumes[${i}].mountPath`,
        message: `${v.mountPath} overlaps ${other}, which the cluster mounts into every stage pod: mount elsewhere, or name files under ${other} directly`,
      });
  }
  return out;
}

/** The spec's input URIs (models and datasets) with the fields they sit in. */
export function runInputUris(spec: RlhfRunSpec): Array<{ path: string; uri: string }> {
  const inputs: Array<[string, string | undefined]> = [
    ['spec.policy.model', spec.policy?.model],
    ['spec.judge.model', spec.judge.model],
    ['spec.prompts.dataset', spec.prompts.dataset],
    ['spec.prompts.eval', spec.prompts.eval],
    ['spec.pairs.dataset', spec.pairs.dataset],
  ];
  return inputs.flatMap(([path, uri]) => (uri ? [{ path, uri }] : []));
}

/**
 * The file:// inputs of a cluster run that lie under none of `mountPaths` (the run's placement.volumes and
 * the chart's artifacts.volumes): each would fail in the first pod that reads it.
 */
export function unmountedInputs(spec: RlhfRunSpec, mountPaths: readonly string[]): FieldProblem[] {
  const roots = [...mountPaths, ...(spec.placement.volumes ?? []).map((v) => v.mountPath)].map(normalMount);
  const out: FieldProblem[] = [];
  for (const { path, uri } of runInputUris(spec)) {
    if (!uri.startsWith('file://')) continue;
    let file: string;
    try {
      file = decodeURIComponent(new URL(uri).pathname);
    } catch {
      continue; // the schema's pattern and the sandbox name a malformed URI
    }
    if (roots.some((r) => under(file, r))) continue;
    out.push({
      path,
      message: `${uri} is under no volume the stage pods mount (${roots.length ? roots.join(', ') : 'none'}): add its PersistentVolumeClaim to spec.placement.volumes, or push it with \`rlhf model push\` / \`rlhf data push\` and name the nats-obj:// or s3:// URI`,
    });
  }
  return out;
}
