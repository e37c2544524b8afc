/**
 * Static shapes with symbolic dimensions. A dim is a size or a name ('batch', 'seq'); reshapes that merge
 * symbolic dims produce product names ('batch*seq', '64*seq'), kept canonical (coefficient first, names
 * sorted) so that equal products compare equal as strings and a later -1 can divide them apart again.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];

interface Monomial {
  coef: number;
  names: string[];
}

/** Splits a product name at its top-level '*' (a sum like '(past+seq)' stays one opaque factor). */
function factors(d: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < d.length; i++) {
    const c = d[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '*' && depth === 0) {
      out.push(d.slice(start, i));
      start = i + 1;
    }
  }
  out.push(d.slice(start));
  return out;
}

function parse(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, names: [] };
  let coef = 1;
  const names: string[] = [];
  for (const part of factors(d)) {
    const n = Number(part);
    if (part !== '' && Number.isInteger(n)) coef *= n;
    else names.push(part);
  }
  return { coef, names: names.sort() };
}

function format(m: Monomial): Dim {
  if (m.names.length === 0) return m.coef;
  const names = m.names.join('*');
  return m.coef === 1 ? names : `${m.coef}*${names}`;
}

export function mulDims(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  return format({ coef: x.coef * y.coef, names: [...x.names, ...y.names].sort() });
}

/** a + b; a symbolic sum becomes one opaque name such as '(past+seq)'. */
export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `(${a}+${b})`;
}

/** a - k for a constant k; a symbolic difference becomes one opaque name such as '(seq-1)'. */
export function subDim(a: Dim, k: number): Dim {
  if (typeof a === 'number') return a - k;
  return k === 0 ? a : `(${a}-${k})`;
}

/** a / b when b divides a exactly (as a product of names times a coefficient), else undefined. */
export function divDims(a: Dim, b: Dim): Dim | undefined {
  const x = parse(a);
  const y = parse(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return undefined;
  const names = [...x.names];
  for (const n of y.names) {
    const i = names.indexOf(n);
    if (i < 0) return undefined;
    names.splice(i, 1);
  }
  return format({ coef: x.coef / y.coef, names });
}

export function numel(shape: Shape): Dim {
  return shape.reduce<Dim>((acc, d) => mulDims(acc, d), 1);
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

/** The shape as numbers, or an error naming `what` needed it static. */
export function staticShape(shape: Shape, what: string): number[] {
  if (!isStatic(shape)) throw new Error(`${what} needs a static shape, got ${formatShape(shape)}`);
  return [...shape];
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Numpy-style multidirectional broadcasting; a size-1 dim stretches, anything else must match. */
export function broadcastShapes(shapes: readonly Shape[], where: string): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim !== 1) {
        throw new Error(`${where}: cannot broadcast ${shapes.map(formatShape).join(' with ')} (dim ${i})`);
      }
      dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** Normalises a possibly negative axis against a rank, with a clear error when out of range. */
export function normAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new Error(`${where}: axis ${axis} out of range for rank ${rank}`);
  return a;
}
