/** What the real apiserver does to built-in objects on write: defaulting, status reset, a few validations. */
import { isObject } from './patch.js';
import { applySchemaDefaults, type JsonObject, type ResourceType, resourceKey } from './resources.js';
import { errors, type StatusCause } from './status.js';

type Meta = { name?: string; uid?: string; labels?: Record<string, string> };

function asObject(v: unknown): JsonObject {
  return isObject(v) ? v : {};
}

function defaultJob(job: JsonObject): void {
  const meta = asObject(job.metadata) as Meta;
  const spec = asObject(job.spec);
  job.spec = spec;
  if (spec.completions === undefined && spec.parallelism === undefined) spec.completions = 1;
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  const uid = meta.uid ?? '';
  // The real server labels the template with the job's uid and name and selects on the uid.
  spec.selector ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
  const template = asObject(spec.template);
  spec.template = template;
  const tmeta = asObject(template.metadata) as JsonObject & Meta;
  template.metadata = tmeta;
  tmeta.labels = {
    ...(tmeta.labels ?? {}),
    'batch.kubernetes.io/controller-uid': uid,
    'batch.kubernetes.io/job-name': meta.name ?? '',
    'controller-uid': uid,
    'job-name': meta.name ?? '',
  };
  const podSpec = asObject(template.spec);
  template.spec = podSpec;
  defaultPodSpec(podSpec);
}

function defaultPodSpec(spec: JsonObject): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  for (const c of (spec.containers as JsonObject[] | undefined) ?? []) {
    c.imagePullPolicy ??=
      String(c.image ?? '').endsWith(':latest') || !String(c.image ?? '').includes(':')
        ? 'Always'
        : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
  }
}

function validateJob(job: JsonObject, name: string, type: ResourceType): void {
  const causes: StatusCause[] = [];
  const podSpec = asObject(asObject(asObject(job.spec).template).spec);
  const restart = podSpec.restartPolicy;
  if (restart !== 'Never' && restart !== 'OnFailure') {
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: "${String(restart)}": supported values: "OnFailure", "Never"`,
      field: 'spec.template.spec.restartPolicy',
    });
  }
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push({
      reason: 'FieldValueRequired',
      message: 'Required value',
      field: 'spec.template.spec.containers',
    });
  }
  if (causes.length > 0) throw errors.invalid(type, name, causes);
}

function validatePod(pod: JsonObject, name: string, type: ResourceType): void {
  const containers = asObject(pod.spec).containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    throw errors.invalid(type, name, [
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' },
    ]);
  }
}

/** Secret stringData is write-only: the server folds it into base64 data. */
function foldStringData(secret: JsonObject): void {
  if (!isObject(secret.stringData)) return;
  const data = asObject(secret.data);
  for (const [k, v] of Object.entries(secret.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
  secret.data = data;
  delete secret.stringData;
  secret.type ??= 'Opaque';
}

/** Defaulting and validation on create and on update of the main resource. */
export function prepareWrite(type: ResourceType, obj: JsonObject, old: JsonObject | undefined): void {
  const name = String(asObject(obj.metadata).name ?? '');
  switch (resourceKey(type)) {
    case 'jobs.batch':
      defaultJob(obj);
      validateJob(obj, name, type);
      if (old) {
        const oldSpec = asObject(old.spec);
        const newSpec = asObject(obj.spec);
        for (const field of ['template', 'selector', 'completionMode'] as const) {
          if (JSON.stringify(oldSpec[field]) !== JSON.stringify(newSpec[field])) {
            throw errors.invalid(type, name, [
              { reason: 'FieldValueInvalid', message: 'field is immutable', field: `spec.${field}` },
            ]);
          }
        }
      }
      break;
    case 'pods':
      obj.spec ??= {};
      defaultPodSpec(asObject(obj.spec));
      validatePod(obj, name, type);
      break;
    case 'secrets':
      foldStringData(obj);
      break;
  }
  if (type.schema) applySchemaDefaults(obj, type.schema);
}

/** The status a new object starts with when its type has a status subresource (client status is dropped). */
export function initialStatus(type: ResourceType, obj: JsonObject): JsonObject | undefined {
  switch (resourceKey(type)) {
    case 'pods':
      return { phase: 'Pending', qosClass: 'BestEffort' };
    case 'jobs.batch':
      return {};
    case 'namespaces':
      return { phase: 'Active' };
    case 'customresourcedefinitions.apiextensions.k8s.io': {
      const spec = asObject(obj.spec);
      return {
        acceptedNames: spec.names,
        storedVersions: ((spec.versions as JsonObject[] | undefined) ?? [])
          .filter((v) => v.storage)
          .map((v) => v.name),
        conditions: [
          { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found' },
          {
            type: 'Established',
            status: 'True',
            reason: 'InitialNamesAccepted',
            message: 'the initial names have been accepted',
          },
        ],
      };
    }
    default:
      return undefined;
  }
}

/**
 * The propagation policy a DELETE without one gets. batch/v1 Jobs default to Orphan (for backward
 * compatibility; the real server also warns), so deleting a Job without a policy leaves its pods running.
 */
export function defaultPropagation(type: ResourceType): 'Orphan' | 'Background' {
  return resourceKey(type) === 'jobs.batch' ? 'Orphan' : 'Background';
}

/** Pods are removed at once (grace period 0): the fake kubelet stops the process when it sees them go. */
export function returnsObjectOnDelete(type: ResourceType): boolean {
  return type.custom || resourceKey(type) === 'pods';
}
