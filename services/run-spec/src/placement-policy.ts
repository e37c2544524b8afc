/**
 * The operator's placement policy: which tolerations, priority classes, node selector labels, schedulers,
 * volume claims and whether an affinity an RLHFRun may give its stage pods (the chart's controller.placementPolicy, a
 * YAML or JSON file the controller reads at start). Nothing is allowed unless listed: an absent or empty
 * list allows none, so the empty policy lets a run ask for none of these.
 */
import { parse as parseYaml } from 'yaml';
import type { FieldProblem } from './validate.js';

export const tolerationEffects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TolerationEffect = (typeof tolerationEffects)[number];

/**
 * A toleration runs may carry, or a narrower one. `key` is required; `operator` defaults to Equal (then
 * `value` must match, '' when absent); Exists allows any value. No `effect` allows any effect; a
 * `tolerationSeconds` caps the run's.
 */
export interface TolerationRule {
  key: string;
  operator: 'Equal' | 'Exists';
  value?: string;
  effect?: TolerationEffect;
  tolerationSeconds?: number;
}

export interface PlacementPolicy {
  allowedTolerations: TolerationRule[];
  allowedPriorityClasses: string[];
  /** Node label key -> the values runs may select; ["*"] allows any value of that key. */
  allowedNodeSelectors: Record<string, string[]>;
  allowedSchedulerNames: string[];
  /** Affinity is all or nothing: node affinity can reach any node, so it is not checked field by field. */
  allowAffinity: boolean;
  /**
   * PersistentVolumeClaims a run may mount (spec.placement.volumes), by claim name in the run's namespace;
   * ["*"] allows any. The stage Jobs mount them, so a run could otherwise read any claim of its namespace.
   */
  allowedVolumeClaims: string[];
}

/** What a controller enforces when no policy is given: no toleration, priority class, selector, ... */
export const emptyPlacementPolicy: PlacementPolicy = Object.freeze({
  allowedTolerations: [],
  allowedPriorityClasses: [],
  allowedNodeSelectors: {},
  allowedSchedulerNames: [],
  allowAffinity: false,
  allowedVolumeClaims: [],
});

export const anyValue = '*';

/** A policy file with problems; the same shape (code, field, fix) as RlhfError. */
export class InvalidPlacementPolicyError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  readonly field: string;
  readonly fix =
    'correct the listed fields of the placement policy (controller.placementPolicy in the chart)';
  constructor(
    readonly source: string,
    readonly problems: FieldProblem[],
  ) {
    super(
      `${source} is not a valid placement policy: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    );
    this.name = 'InvalidPlacementPolicyError';
    this.field = problems[0]?.path ?? '(document)';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

function stringList(raw: unknown, path: string, out: FieldProblem[]): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    out.push({ path, message: 'must be a list of names' });
    return [];
  }
  const names: string[] = [];
  for (const [i, v] of raw.entries()) {
    if (nonEmptyString(v)) names.push(v);
    else out.push({ path: `${path}[${i}]`, message: `must be a non-empty string, got ${JSON.stringify(v)}` });
  }
  return names;
}

const ruleFields = ['key', 'operator', 'value', 'effect', 'tolerationSeconds'];

function tolerationRule(raw: unknown, path: string, out: FieldProblem[]): TolerationRule | null {
  if (!isObject(raw)) {
    out.push({ path, message: 'must be a toleration ({key, operator, value, effect})' });
    return null;
  }
  const before = out.length;
  for (const k of Object.keys(raw))
    if (!ruleFields.includes(k))
      out.push({
        path: `${path}.${k}`,
        message: `is not a toleration field (known: ${ruleFields.join(', ')})`,
      });
  const { key, operator = 'Equal', value, effect, tolerationSeconds } = raw;
  if (!nonEmptyString(key))
    out.push({
      path: `${path}.key`,
      message: 'is required: a toleration without a key tolerates every taint, which no run may ask for',
    });
  if (operator !== 'Equal' && operator !== 'Exists')
    out.push({
      path: `${path}.operator`,
      message: `must be Equal or Exists, got ${JSON.stringify(operator)}`,
    });
  if (value !== undefined && typeof value !== 'string')
    out.push({ path: `${path}.value`, message: 'must be a string' });
  if (operator === 'Exists' && nonEmptyString(value))
    out.push({ path: `${path}.value`, message: 'must be empty with operator Exists' });
  if (effect !== undefined && effect !== '' && !tolerationEffects.includes(effect as TolerationEffect))
    out.push({
      path: `${path}.effect`,
      message: `must be one of ${tolerationEffects.join(', ')} (or absent for any effect), got ${JSON.stringify(effect)}`,
    });
  if (
    tolerationSeconds !== undefined &&
    !(typeof tolerationSeconds === 'number' && Number.isInteger(tolerationSeconds) && tolerationSeconds >= 0)
  )
    out.push({ path: `${path}.tolerationSeconds`, message: 'must be a whole number of seconds >= 0' });
  if (out.length > before) return null;
  return {
    key: key as string,
    operator: operator as TolerationRule['operator'],
    ...(typeof value === 'string' && value !== '' ? { value } : {}),
    ...(effect ? { effect: effect as TolerationEffect } : {}),
    ...(typeof tolerationSeconds === 'number' ? { tolerationSeconds } : {}),
  };
}

function nodeSelectors(raw: unknown, path: string, out: FieldProblem[]): Record<string, string[]> {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) {
    out.push({ path, message: 'must be a map of node label key to the values runs may select' });
    return {};
  }
  const allowed: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(raw)) {
    const at = `${path}[${JSON.stringify(key)}]`;
    if (key === '') out.push({ path: at, message: 'a node label key must not be empty' });
    const list = stringList(values, at, out);
    if (list.includes(anyValue) && list.length > 1)
      out.push({ path: at, message: `"${anyValue}" allows any value: list it alone` });
    allowed[key] = list;
  }
  return allowed;
}

const policyFields = [
  'allowedTolerations',
  'allowedPriorityClasses',
  'allowedNodeSelectors',
  'allowedSchedulerNames',
  'allowAffinity',
  'allowedVolumeClaims',
];

/** Checks and normalises a parsed policy document; every problem at once, each naming its field. */
export function parsePlacementPolicy(raw: unknown, source = 'placement policy'): PlacementPolicy {
  const out: FieldProblem[] = [];
  if (raw === undefined || raw === null) return emptyPlacementPolicy;
  if (!isObject(raw))
    throw new InvalidPlacementPolicyError(source, [
      { path: '(document)', message: `must be a mapping with ${policyFields.join(', ')}` },
    ]);
  for (const k of Object.keys(raw))
    if (!policyFields.includes(k))
      out.push({ path: k, message: `is not a placement policy field (known: ${policyFields.join(', ')})` });
  const tolerations: TolerationRule[] = [];
  if (raw.allowedTolerations !== undefined && raw.allowedTolerations !== null) {
    if (!Array.isArray(raw.allowedTolerations))
      out.push({ path: 'allowedTolerations', message: 'must be a list of tolerations' });
    else
      for (const [i, t] of raw.allowedTolerations.entries()) {
        const rule = tolerationRule(t, `allowedTolerations[${i}]`, out);
        if (rule) tolerations.push(rule);
      }
  }
  const allowAffinity = raw.allowAffinity ?? false;
  if (typeof allowAffinity !== 'boolean')
    out.push({
      path: 'allowAffinity',
      message: `must be true or false, got ${JSON.stringify(allowAffinity)}`,
    });
  const policy: PlacementPolicy = {
    allowedTolerations: tolerations,
    allowedPriorityClasses: stringList(raw.allowedPriorityClasses, 'allowedPriorityClasses', out),
    allowedNodeSelectors: nodeSelectors(raw.allowedNodeSelectors, 'allowedNodeSelectors', out),
    allowedSchedulerNames: stringList(raw.allowedSchedulerNames, 'allowedSchedulerNames', out),
    allowAffinity: allowAffinity === true,
    allowedVolumeClaims: stringList(raw.allowedVolumeClaims, 'allowedVolumeClaims', out),
  };
  if (policy.allowedVolumeClaims.includes(anyValue) && policy.allowedVolumeClaims.length > 1)
    out.push({ path: 'allowedVolumeClaims', message: `"${anyValue}" allows any claim: list it alone` });
  if (out.length) throw new InvalidPlacementPolicyError(source, out);
  return policy;
}

/** A policy file's text (YAML, of which JSON is a subset). */
export function parsePlacementPolicyYaml(text: string, source = 'placement policy'): PlacementPolicy {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new InvalidPlacementPolicyError(source, [
      { path: '(document)', message: `is not valid YAML: ${(cause as Error).message.split('\n')[0]}` },
    ]);
  }
  return parsePlacementPolicy(raw, source);
}
