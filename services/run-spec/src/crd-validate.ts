/**
 * What the API server does with a custom resource, for the structural-schema subset our CRDs emit:
 * defaulting (absent fields take `default`, recursively, as apiextensions does), OpenAPI value validation
 * (types, bounds, enums, patterns, required, anyOf/not), unknown fields rejected (kubectl's default
 * server-side field validation is Strict; they are then the only answer, as the server refuses them while
 * decoding) and x-kubernetes-validations evaluated with crd-cel.ts, transition rules only on update, all of
 * them skipped when the schema found a blocking problem, as the API server does. Tests use it to check that
 * the CRD accepts and rejects the same runs as run-spec; test/kube-real/crd-truth.test.ts checks it against
 * a real kube-apiserver.
 */

import { CelError, evalCel, isTransitionRule } from './crd-cel.js';
import type { CelRule, OpenApiSchema } from './openapi-types.js';

export interface CrdProblem {
  path: string;
  message: string;
}

type S = OpenApiSchema & {
  type?: string;
  properties?: Record<string, S>;
  additionalProperties?: S;
  items?: S;
  anyOf?: S[];
  not?: S;
  required?: string[];
  enum?: unknown[];
  'x-kubernetes-validations'?: CelRule[];
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const clone = <T>(v: T): T => structuredClone(v);

/** Structural defaulting: a copy of value with absent fields set to their defaults, recursively. */
export function applyCrdDefaults(schema: S, value: unknown): unknown {
  if (Array.isArray(value) && schema.items) return value.map((v) => applyCrdDefaults(schema.items as S, v));
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [k, prop] of Object.entries(schema.properties ?? {}))
    if (out[k] === undefined && prop.default !== undefined) out[k] = clone(prop.default);
  for (const [k, v] of Object.entries(out)) {
    const prop = schema.properties?.[k] ?? schema.additionalProperties;
    if (prop) out[k] = applyCrdDefaults(prop, v);
  }
  return out;
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
  }
  throw new Error(`schema type ${type} is not supported`);
}

const deepEqual = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * One schema violation. `blocking` marks the kinds the API server's CRD strategy calls blocking (wrong type,
 * enum, required, maxLength, maxItems or maxProperties): with any of them in the object it evaluates no CEL
 * rule at all, anywhere, and answers "some validation rules were not checked".
 */
interface SchemaProblem {
  message: string;
  blocking: boolean;
}

const problem = (message: string, blocking = false): SchemaProblem => ({ message, blocking });

/** Value validations of one node (OpenAPI keywords apply only to the JSON types they are about). */
function valueProblems(s: S, v: unknown): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  if (s.type && !typeOk(s.type, v)) return [problem(`must be of type ${s.type}`, true)];
  if (s.enum && !s.enum.some((e) => deepEqual(e, v)))
    out.push(problem(`must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`, true));
  if (typeof v === 'number') {
    const min = s.minimum as number | undefined;
    const max = s.maximum as number | undefined;
    if (min !== undefined && (s.exclusiveMinimum ? v <= min : v < min))
      out.push(problem(`must be ${s.exclusiveMinimum ? '>' : '>='} ${min}`));
    if (max !== undefined && (s.exclusiveMaximum ? v >= max : v > max))
      out.push(problem(`must be ${s.exclusiveMaximum ? '<' : '<='} ${max}`));
    if (s.multipleOf !== undefined && v % (s.multipleOf as number) !== 0)
      out.push(problem(`must be a multiple of ${s.multipleOf}`));
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.minLength !== undefined && n < (s.minLength as number))
      out.push(problem(`must be at least ${s.minLength} long`));
    if (s.maxLength !== undefined && n > (s.maxLength as number))
      out.push(problem(`must be at most ${s.maxLength} long`, true));
    if (s.pattern !== undefined && !new RegExp(s.pattern as string).test(v))
      out.push(problem(`must match ${s.pattern}`));
    if (s.format === 'date-time' && Number.isNaN(Date.parse(v)))
      out.push(problem('must be an RFC 3339 date-time'));
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < (s.minItems as number))
      out.push(problem(`needs at least ${s.minItems} items`));
    if (s.maxItems !== undefined && v.length > (s.maxItems as number))
      out.push(problem(`takes at most ${s.maxItems} items`, true));
  }
  if (isObject(v)) {
    const n = Object.keys(v).length;
    if (s.minProperties !== undefined && n < (s.minProperties as number))
      out.push(problem(`needs at least ${s.minProperties} properties`));
    if (s.maxProperties !== undefined && n > (s.maxProperties as number))
      out.push(problem(`takes at most ${s.maxProperties} properties`, true));
  }
  if (s.anyOf) {
    // The server reports the failures of the branch with the fewest (the first of equals) beside its own
    // "must validate at least one schema", so that branch decides whether the failure blocks CEL.
    let best: SchemaProblem[] | undefined;
    for (const branch of s.anyOf) {
      const failures = valueProblems(branch, v);
      if (failures.length === 0) {
        best = undefined;
        break;
      }
      if (!best || failures.length < best.length) best = failures;
    }
    if (best)
      out.push(
        problem(
          'matches none of the allowed forms',
          best.some((p) => p.blocking),
        ),
      );
  }
  if (s.not && valueProblems(s.not, v).length === 0) out.push(problem('matches a forbidden form'));
  return out;
}

/** A CEL rule to evaluate once the whole object passed the schema without a blocking problem. */
interface PendingRule {
  rule: CelRule;
  path: string;
  self: unknown;
  oldSelf: unknown;
}

interface Findings {
  problems: (CrdProblem & { blocking: boolean })[];
  unknown: CrdProblem[];
  rules: PendingRule[];
}

function validateNode(s: S, v: unknown, old: unknown, path: string, out: Findings): void {
  const own = valueProblems(s, v);
  for (const p of own) out.problems.push({ path, ...p });
  // A value of the wrong type has no children the schema describes.
  if (s.type && !typeOk(s.type, v)) return;
  if (isObject(v)) {
    for (const r of s.required ?? [])
      if (v[r] === undefined)
        out.problems.push({ path: `${path}.${r}`, message: 'Required value', blocking: true });
    for (const [k, child] of Object.entries(v)) {
      const prop = s.properties?.[k] ?? s.additionalProperties;
      const oldChild = isObject(old) ? old[k] : undefined;
      if (prop) validateNode(prop, child, oldChild, `${path}.${k}`, out);
      else if (!s['x-kubernetes-preserve-unknown-fields'] && path !== '.metadata')
        out.unknown.push({ path: `${path}.${k}`, message: 'field not declared in schema' });
    }
  } else if (Array.isArray(v) && s.items) {
    // Items correlate with old items only for map lists; our rules never need that.
    for (const [i, item] of v.entries()) validateNode(s.items as S, item, undefined, `${path}[${i}]`, out);
  }
  for (const rule of s['x-kubernetes-validations'] ?? []) {
    // Transition rules run only on update, and only where the old object has the value.
    if (isTransitionRule(rule.rule) && old === undefined) continue;
    out.rules.push({ rule, path, self: v, oldSelf: old });
  }
}

function celProblems(rules: PendingRule[]): CrdProblem[] {
  const out: CrdProblem[] = [];
  for (const { rule: r, path, self, oldSelf } of rules) {
    const transition = isTransitionRule(r.rule);
    let ok: boolean;
    try {
      ok = evalCel(r.rule, transition ? { self, oldSelf } : { self });
    } catch (e) {
      if (!(e instanceof CelError)) throw e;
      out.push({
        path: path + (r.fieldPath ?? ''),
        message: `rule ${r.rule} failed to evaluate: ${e.message}`,
      });
      continue;
    }
    if (!ok) out.push({ path: path + (r.fieldPath ?? ''), message: r.message });
  }
  return out;
}

/**
 * Validates a custom resource the way the API server would on create (no `old`) or update. Returns the
 * defaulted object and every problem, with paths like `spec.dpo.beta`.
 */
export function validateCustomResource(
  openAPIV3Schema: OpenApiSchema,
  obj: unknown,
  old?: unknown,
): { object: unknown; problems: CrdProblem[] } {
  const schema = openAPIV3Schema as S;
  const object = applyCrdDefaults(schema, obj);
  const oldObject = old === undefined ? undefined : applyCrdDefaults(schema, old);
  const found: Findings = { problems: [], unknown: [], rules: [] };
  validateNode(schema, object, oldObject, '', found);
  // Strict field validation refuses unknown fields while decoding, before any other check runs.
  const problems: CrdProblem[] = found.unknown.length
    ? found.unknown
    : [
        ...found.problems.map(({ path, message }) => ({ path, message })),
        ...(found.problems.some((p) => p.blocking) ? [] : celProblems(found.rules)),
      ];
  return { object, problems: problems.map((p) => ({ ...p, path: p.path.replace(/^\./, '') })) };
}
