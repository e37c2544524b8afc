/**
 * Reading an RLHFRun manifest (the same YAML `kubectl apply` takes): kind and apiVersion, a DNS-label name,
 * every schema problem at once, then the cross-field rules the CRD expresses in CEL, then defaults.
 */
import { parse as parseYaml } from 'yaml';
import { engineProblems } from './engine-rules.js';
import { volumeProblems } from './placement-volumes.js';
import { quantityValue } from './quantity.js';
import { rlhfRunSpecSchema } from './rlhf-run-schema.js';
import type { RlhfRun, RlhfRunSpec } from './types.js';
import { applyDefaults, type FieldProblem, validateAgainst } from './validate.js';

export const apiVersion = 'rlhf.dev/v1alpha1';
export const kind = 'RLHFRun';

export class InvalidRunError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  readonly field: string;
  readonly fix = 'correct the listed fields in the run file';
  constructor(
    readonly source: string,
    readonly problems: FieldProblem[],
  ) {
    super(
      `${source} is not a valid RLHFRun:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
    );
    this.name = 'InvalidRunError';
    this.field = problems[0]?.path ?? 'spec';
  }
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Cross-field rules (mirrored as CEL rules in the CRD). */
function crossFieldProblems(spec: RlhfRunSpec): FieldProblem[] {
  const out: FieldProblem[] = [];
  // Setup trains the reward model, and the preference model when the judge needs one.
  if (spec.judge.type !== 'gold' && !spec.judge.model && !spec.setup)
    out.push({
      path: 'spec.judge.model',
      message: `is required for judge type ${spec.judge.type} unless spec.setup trains it`,
    });
  if (!spec.setup && !spec.policy)
    out.push({ path: 'spec.policy.model', message: 'is required unless spec.setup trains the policy' });
  if (!spec.setup && !spec.prompts.dataset)
    out.push({ path: 'spec.prompts.dataset', message: 'is required unless spec.setup synthesizes prompts' });
  if (spec.judge.type === 'gold' && !spec.judge.task && !spec.setup)
    out.push({ path: 'spec.judge.task', message: 'is required for judge type gold (which gold reward?)' });
  // Checked here, not in the CRD: the controller reports them as InvalidSpec on the run.
  if (spec.judge.lengthPenalty === 'auto' && spec.judge.type !== 'reward')
    out.push({
      path: 'spec.judge.lengthPenalty',
      message: `"auto" fits lambda against a reward model; judge type ${spec.judge.type} needs a number (e.g. 0)`,
    });
  else if (spec.judge.lengthPenalty === 'auto' && !spec.judge.task && !spec.setup?.task)
    out.push({
      path: 'spec.judge.lengthPenalty',
      message: '"auto" regresses the reward on a gold reward: set spec.judge.task, or give a number',
    });
  for (const group of ['generate', 'judge', 'train', 'evaluate'] as const) {
    const r = spec.placement[group].resources;
    for (const what of ['cpu', 'memory'] as const) {
      const request = r?.requests?.[what];
      const limit = r?.limits?.[what];
      if (request !== undefined && limit !== undefined && quantityValue(request) > quantityValue(limit))
        out.push({
          path: `spec.placement.${group}.resources.requests.${what}`,
          message: `${request} is more than the limit ${limit}: raise limits.${what} or lower the request`,
        });
    }
  }
  out.push(...engineProblems(spec));
  out.push(...volumeProblems(spec.placement.volumes));
  if (spec.dpo.gradAccum > spec.dpo.batchSize)
    out.push({
      path: 'spec.dpo.gradAccum',
      message: `must not exceed spec.dpo.batchSize (${spec.dpo.batchSize})`,
    });
  return out;
}

/** Validates and defaults a parsed manifest object. */
export function parseRunObject(raw: unknown, source = 'run'): RlhfRun {
  const problems: FieldProblem[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new InvalidRunError(source, [
      { path: '(document)', message: 'must be a YAML mapping with apiVersion, kind, metadata and spec' },
    ]);
  const doc = raw as Record<string, unknown>;
  if (doc.apiVersion !== apiVersion)
    problems.push({
      path: 'apiVersion',
      message: `must be ${apiVersion}, got ${JSON.stringify(doc.apiVersion)}`,
    });
  if (doc.kind !== kind)
    problems.push({ path: 'kind', message: `must be ${kind}, got ${JSON.stringify(doc.kind)}` });
  const metadata = doc.metadata as Record<string, unknown> | undefined;
  if (typeof metadata?.name !== 'string' || !dnsLabel.test(metadata.name)) {
    problems.push({
      path: 'metadata.name',
      message: 'must be a lowercase DNS label (a-z, 0-9, -; at most 63 characters)',
    });
  }
  if (
    metadata?.namespace !== undefined &&
    (typeof metadata.namespace !== 'string' || !dnsLabel.test(metadata.namespace))
  ) {
    problems.push({ path: 'metadata.namespace', message: 'must be a lowercase DNS label' });
  }
  if (doc.spec === undefined) problems.push({ path: 'spec', message: 'is required' });
  else validateAgainst(rlhfRunSpecSchema, doc.spec, 'spec', problems);
  for (const k of Object.keys(doc)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(k))
      problems.push({ path: k, message: 'is not a field of an RLHFRun' });
  }
  if (problems.length) throw new InvalidRunError(source, problems);
  const spec = applyDefaults(rlhfRunSpecSchema, doc.spec) as RlhfRunSpec;
  const more = crossFieldProblems(spec);
  if (more.length) throw new InvalidRunError(source, more);
  return { apiVersion, kind, metadata: metadata as RlhfRun['metadata'], spec };
}

export function parseRunYaml(text: string, source = 'run.yaml'): RlhfRun {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new InvalidRunError(source, [
      { path: '(document)', message: `is not valid YAML: ${(cause as Error).message.split('\n')[0]}` },
    ]);
  }
  return parseRunObject(raw, source);
}
