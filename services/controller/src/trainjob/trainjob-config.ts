/**
 * RLHF_TRAINJOB (JSON, set by the chart from its `trainJob` values): how the controller makes TrainJobs,
 * checked field by field, since a bad value would make every TrainJob invalid. Absent: the defaults (the
 * `torch-distributed` ClusterTrainingRuntime, its own image, `trl dpo`).
 */
import { invalidArgument } from '@rlhf/platform/core';
import { defaultTrainJobConfig, type TrainJobConfig } from './trainjob-manifest.js';

const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseTrainJobConfig(raw: string | undefined, field = 'RLHF_TRAINJOB'): TrainJobConfig {
  if (raw === undefined || raw.trim() === '') return { ...defaultTrainJobConfig };
  const fix = 'fix trainJob in the chart values';
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw invalidArgument(field, 'is not JSON', fix);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgument(field, 'must be a JSON object', fix);
  const o = v as Record<string, unknown>;
  const config: TrainJobConfig = { ...defaultTrainJobConfig };
  const name = (key: 'runtime' | 'replicatedJob' | 'container', pattern: RegExp, what: string) => {
    const x = o[key];
    if (x === undefined || x === '') return;
    if (typeof x !== 'string' || !pattern.test(x))
      throw invalidArgument(`${field}.${key}`, `${JSON.stringify(x)} is not ${what}`, `set trainJob.${key}`);
    config[key] = x;
  };
  name('runtime', dnsSubdomain, 'a ClusterTrainingRuntime name');
  name('replicatedJob', dnsLabel, 'a replicated job name of the runtime');
  name('container', dnsLabel, 'a container name of the runtime');
  if (o.image !== undefined) {
    // Empty: the runtime's own image, which must then have TRL.
    if (typeof o.image !== 'string' || /\s/.test(o.image))
      throw invalidArgument(`${field}.image`, 'must be an image reference or empty', 'set trainJob.image');
    config.image = o.image;
  }
  if (o.command !== undefined) {
    const c = o.command;
    if (!Array.isArray(c) || c.length === 0 || !c.every((s) => typeof s === 'string' && s !== ''))
      throw invalidArgument(
        `${field}.command`,
        'must be a non-empty list of strings',
        'set trainJob.command, e.g. [trl, dpo]',
      );
    config.command = c as string[];
  }
  return config;
}
