/**
 * Validation and defaulting against the schema: every problem is collected (not just the first) as
 * `spec.dpo.beta: must be > 0`, so a user fixes a run file in one pass, before anything starts.
 */
import type { SchemaNode } from './schema-types.js';

export interface FieldProblem {
  path: string;
  message: string;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** The first problem of a scalar value, or null when it fits the node. */
function scalarProblem(node: SchemaNode, value: unknown): string | null {
  if (node.type === 'string') {
    if (typeof value !== 'string') return `must be a string, got ${typeName(value)}`;
    if (node.enum && !node.enum.includes(value))
      return `must be one of ${node.enum.join(', ')}, got "${value}"`;
    if (node.minLength !== undefined && value.length < node.minLength)
      return `must have at least ${node.minLength} characters`;
    if (node.pattern && !new RegExp(node.pattern).test(value))
      return `"${value}" is not valid: ${node.description}`;
    return null;
  }
  if (node.type === 'boolean')
    return typeof value === 'boolean' ? null : `must be true or false, got ${typeName(value)}`;
  const words = node['x-rlhf-or-words'];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return `must be a number${words ? ` or ${words.map((w) => `"${w}"`).join(', ')}` : ''}, got ${typeName(value)}`;
  }
  if (node.type === 'integer' && !Number.isInteger(value)) return `must be an integer, got ${value}`;
  if (node.enum && !node.enum.includes(value)) return `must be one of ${node.enum.join(', ')}`;
  if (
    node.minimum !== undefined &&
    (node.exclusiveMinimum ? !(value > node.minimum) : value < node.minimum)
  ) {
    return `must be ${node.exclusiveMinimum ? '>' : '>='} ${node.minimum}, got ${value}`;
  }
  if (
    node.maximum !== undefined &&
    (node.exclusiveMaximum ? !(value < node.maximum) : value > node.maximum)
  ) {
    return `must be ${node.exclusiveMaximum ? '<' : '<='} ${node.maximum}, got ${value}`;
  }
  return null;
}

export function validateAgainst(node: SchemaNode, value: unknown, path: string, out: FieldProblem[]): void {
  if (node['x-rlhf-or-words']?.includes(value as string)) return;
  if (node.type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      out.push({ path, message: `must be an object, got ${typeName(value)}` });
      return;
    }
    const obj = value as Record<string, unknown>;
    for (const r of node.required ?? [])
      if (obj[r] === undefined) out.push({ path: `${path}.${r}`, message: 'is required' });
    for (const [k, v] of Object.entries(obj)) {
      const child = node.properties?.[k] ?? node.additionalProperties;
      if (child) validateAgainst(child, v, `${path}.${k}`, out);
      else if (!node['x-kubernetes-preserve-unknown-fields']) {
        const known = Object.keys(node.properties ?? {});
        out.push({
          path: `${path}.${k}`,
          message: `is not a field here${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        });
      }
    }
    return;
  }
  if (node.type === 'array') {
    if (!Array.isArray(value)) {
      out.push({ path, message: `must be a list, got ${typeName(value)}` });
      return;
    }
    const items = node.items;
    if (items) for (const [i, v] of value.entries()) validateAgainst(items, v, `${path}[${i}]`, out);
    return;
  }
  const problem = scalarProblem(node, value);
  if (problem) out.push({ path, message: problem });
}

/** A copy of `value` with every absent field that has a default filled in (objects created as needed). */
export function applyDefaults(node: SchemaNode, value: unknown): unknown {
  if (node.type !== 'object' || !node.properties) return value === undefined ? node.default : value;
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value)))
    return value;
  const obj: Record<string, unknown> = { ...((value as Record<string, unknown> | undefined) ?? {}) };
  for (const [k, child] of Object.entries(node.properties)) {
    const filled = applyDefaults(child, obj[k]);
    // An absent optional section with required fields stays absent (its presence means something).
    const materialize = hasDefaults(child) && !child.required?.length;
    if (filled !== undefined && (child.type !== 'object' || obj[k] !== undefined || materialize))
      obj[k] = filled;
  }
  return obj;
}

function hasDefaults(node: SchemaNode): boolean {
  if (node.default !== undefined) return true;
  return Object.values(node.properties ?? {}).some(hasDefaults);
}
