/** Label selectors (equality and set-based) and field selectors, parsed from their query-string form. */
import { errors } from './status.js';

type Requirement =
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | '!exists'; key: string };

export type Matcher = (obj: { metadata?: unknown }) => boolean;

/** Splits on commas that are not inside parentheses (`a in (x,y),b` -> two terms). */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}

function parseTerm(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (set) {
    const values = set[3]!.split(',').map((v) => v.trim());
    return { op: set[2] as 'in' | 'notin', key: set[1]!, values };
  }
  const neq = /^([^!=\s]+)\s*!=\s*(\S*)$/.exec(term);
  if (neq) return { op: 'notin', key: neq[1]!, values: [neq[2]!] };
  const eq = /^([^!=\s]+)\s*==?\s*(\S*)$/.exec(term);
  if (eq) return { op: 'in', key: eq[1]!, values: [eq[2]!] };
  const notExists = /^!\s*(\S+)$/.exec(term);
  if (notExists) return { op: '!exists', key: notExists[1]! };
  if (/^[A-Za-z0-9._/-]+$/.test(term)) return { op: 'exists', key: term };
  throw errors.badRequest(`unable to parse requirement: invalid label selector term "${term}"`);
}

function labelsOf(obj: { metadata?: unknown }): Record<string, string> {
  const meta = obj.metadata as { labels?: Record<string, string> } | undefined;
  return meta?.labels ?? {};
}

/** `app=x,tier!=db,env in (a,b),!legacy,owner` as the apiserver understands it. */
export function parseLabelSelector(selector: string | undefined): Matcher {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map(parseTerm);
  return (obj) => {
    const labels = labelsOf(obj);
    return reqs.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      switch (r.op) {
        case 'exists':
          return has;
        case '!exists':
          return !has;
        case 'in':
          return has && r.values.includes(labels[r.key]!);
        default:
          return !has || !r.values.includes(labels[r.key]!);
      }
    });
  };
}

function fieldValue(obj: Record<string, unknown>, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? undefined : String(cur);
}

/** `metadata.name=x`, `metadata.namespace!=y`, and any other dotted path compared as a string. */
export function parseFieldSelector(selector: string | undefined): Matcher {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map((term) => {
    const m = /^([^!=]+?)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw errors.badRequest(`invalid field selector term "${term}"`);
    return { path: m[1]!, negate: m[2] === '!=', value: m[3]! };
  });
  return (obj) =>
    reqs.every((r) => {
      const v = fieldValue(obj as Record<string, unknown>, r.path) ?? '';
      return r.negate ? v !== r.value : v === r.value;
    });
}

/** Builds the query-string form of a `matchLabels`/`matchExpressions` LabelSelector object. */
export function formatLabelSelector(selector: {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const op = e.operator.toLowerCase();
    if (op === 'exists') terms.push(e.key);
    else if (op === 'doesnotexist') terms.push(`!${e.key}`);
    else terms.push(`${e.key} ${op} (${(e.values ?? []).join(',')})`);
  }
  return terms.join(',');
}
