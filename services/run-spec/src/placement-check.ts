/**
 * A run's spec.placement against the operator's placement policy: every toleration, priority class, node
 * selector label, scheduler name, volume claim and affinity the run asks for must be allowed, each refusal naming the
 * exact field and what the policy allows. These fields are the only ones of a stage pod a run chooses
 * (the schema has no pod template override), so checking them here covers every Job the controller makes.
 */
import {
  anyValue,
  type PlacementPolicy,
  type TolerationEffect,
  type TolerationRule,
  tolerationEffects,
} from './placement-policy.js';
import type { PlacementGroup, RlhfRunSpec } from './types.js';
import type { FieldProblem } from './validate.js';

export const placementGroups = ['generate', 'judge', 'train', 'evaluate'] as const;

const askOperator = (field: string) =>
  `ask the cluster operator to add it to controller.placementPolicy.${field}`;

/** A run's toleration, read from the unchecked spec (the schema passes tolerations through). */
interface RunToleration {
  key: string;
  operator: 'Equal' | 'Exists';
  value: string;
  effect: string;
  tolerationSeconds?: number;
}

const runTolerationFields = ['key', 'operator', 'value', 'effect', 'tolerationSeconds'];

function readToleration(raw: Record<string, unknown>): RunToleration | string {
  const unknown = Object.keys(raw).filter((k) => !runTolerationFields.includes(k));
  if (unknown.length) return `has fields a toleration does not have: ${unknown.join(', ')}`;
  const { key = '', operator = 'Equal', value = '', effect = '', tolerationSeconds } = raw;
  if (typeof key !== 'string') return 'key must be a string';
  if (operator !== 'Equal' && operator !== 'Exists') return 'operator must be Equal or Exists';
  if (typeof value !== 'string') return 'value must be a string';
  if (operator === 'Exists' && value !== '') return 'value must be empty with operator Exists';
  if (effect !== '' && !tolerationEffects.includes(effect as TolerationEffect))
    return `effect must be one of ${tolerationEffects.join(', ')}`;
  if (
    tolerationSeconds !== undefined &&
    !(typeof tolerationSeconds === 'number' && Number.isInteger(tolerationSeconds))
  )
    return 'tolerationSeconds must be a whole number';
  return {
    key,
    operator,
    value,
    effect: effect as string,
    ...(tolerationSeconds !== undefined ? { tolerationSeconds: tolerationSeconds as number } : {}),
  };
}

/**
 * True when the run's toleration tolerates no taint the rule does not: the same key, an effect the rule
 * covers (a run toleration without an effect covers all, so the rule must too), the rule's value unless
 * the rule is Exists, and no longer tolerationSeconds than the rule's.
 */
export function tolerationAllowed(t: RunToleration, rule: TolerationRule): boolean {
  if (t.key !== rule.key) return false;
  if (rule.effect !== undefined && t.effect !== rule.effect) return false;
  if (rule.operator === 'Equal' && (t.operator !== 'Equal' || t.value !== (rule.value ?? ''))) return false;
  if (rule.tolerationSeconds !== undefined) {
    const bounded = t.tolerationSeconds !== undefined && t.tolerationSeconds <= rule.tolerationSeconds;
    if (!bounded) return false;
  }
  return true;
}

/** A label-like key as it is; anything else (newlines, quotes) JSON-quoted so a message stays one line. */
const shown = (key: string | undefined) =>
  /^[A-Za-z0-9._/-]+$/.test(key ?? '') ? key : JSON.stringify(key ?? '');

function describeToleration(t: Partial<RunToleration> | TolerationRule): string {
  const parts = [`key: ${shown(t.key)}`, `operator: ${t.operator ?? 'Equal'}`];
  if (t.operator !== 'Exists') parts.push(`value: ${JSON.stringify(t.value ?? '')}`);
  parts.push(t.effect ? `effect: ${t.effect}` : 'any effect');
  if (t.tolerationSeconds !== undefined) parts.push(`tolerationSeconds: ${t.tolerationSeconds}`);
  return `{${parts.join(', ')}}`;
}

const listed = (names: readonly string[]) =>
  names.length ? names.map((n) => JSON.stringify(n)).join(', ') : 'none';

function groupProblems(g: PlacementGroup, path: string, policy: PlacementPolicy, out: FieldProblem[]): void {
  for (const [i, raw] of (g.tolerations ?? []).entries()) {
    const at = `${path}.tolerations[${i}]`;
    const allowed = policy.allowedTolerations.length
      ? policy.allowedTolerations.map(describeToleration).join(', ')
      : 'none';
    const t = readToleration(raw);
    if (typeof t === 'string') {
      out.push({ path: at, message: `is not a valid toleration: ${t}` });
      continue;
    }
    if (t.key === '') {
      out.push({
        path: at,
        message: `has no key, so it tolerates every taint; no run may ask for that (allowed tolerations: ${allowed})`,
      });
      continue;
    }
    if (!policy.allowedTolerations.some((rule) => tolerationAllowed(t, rule)))
      out.push({
        path: at,
        message: `${describeToleration(t)} is not allowed by the placement policy; allowed tolerations: ${allowed} (${askOperator('allowedTolerations')})`,
      });
  }
  if (g.priorityClassName && !policy.allowedPriorityClasses.includes(g.priorityClassName))
    out.push({
      path: `${path}.priorityClassName`,
      message: `${JSON.stringify(g.priorityClassName)} is not allowed by the placement policy; allowed priority classes: ${listed(policy.allowedPriorityClasses)} (${askOperator('allowedPriorityClasses')})`,
    });
  for (const [key, value] of Object.entries(g.nodeSelector ?? {})) {
    const at = `${path}.nodeSelector[${JSON.stringify(key)}]`;
    const values = policy.allowedNodeSelectors[key];
    if (!values?.length)
      out.push({
        path: at,
        message: `node label ${JSON.stringify(key)} is not allowed by the placement policy; allowed node labels: ${listed(Object.keys(policy.allowedNodeSelectors).filter((k) => policy.allowedNodeSelectors[k]?.length))} (${askOperator('allowedNodeSelectors')})`,
      });
    else if (!values.includes(anyValue) && !values.includes(value))
      out.push({
        path: at,
        message: `value ${JSON.stringify(value)} is not allowed by the placement policy; allowed values of ${key}: ${listed(values)} (${askOperator('allowedNodeSelectors')})`,
      });
  }
  if (g.affinity !== undefined && !policy.allowAffinity)
    out.push({
      path: `${path}.affinity`,
      message: `is not allowed by the placement policy (allowAffinity is false; use an allowed nodeSelector, or ask the cluster operator to set controller.placementPolicy.allowAffinity)`,
    });
}

/** Every field of spec.placement the policy does not allow; empty when the run may be placed as asked. */
export function placementProblems(spec: RlhfRunSpec, policy: PlacementPolicy): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const group of placementGroups)
    groupProblems(spec.placement[group], `spec.placement.${group}`, policy, out);
  const scheduler = spec.placement.schedulerName;
  if (scheduler && !policy.allowedSchedulerNames.includes(scheduler))
    out.push({
      path: 'spec.placement.schedulerName',
      message: `${JSON.stringify(scheduler)} is not allowed by the placement policy; allowed schedulers: ${listed(policy.allowedSchedulerNames)} (${askOperator('allowedSchedulerNames')})`,
    });
  const claims = policy.allowedVolumeClaims;
  for (const [i, v] of (spec.placement.volumes ?? []).entries())
    if (!claims.includes(anyValue) && !claims.includes(v.claimName))
      out.push({
        path: `spec.placement.volumes[${i}].claimName`,
        message: `${JSON.stringify(v.claimName)} is not allowed by the placement policy; allowed claims: ${listed(claims)} (${askOperator('allowedVolumeClaims')})`,
      });
  return out;
}
