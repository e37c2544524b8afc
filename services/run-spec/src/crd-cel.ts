/**
 * A small interpreter for the subset of CEL that our CRDs use in x-kubernetes-validations, so tests can
 * check the API server's rules without an API server. It parses the whole expression grammar (ternary,
 * ||, &&, relations, arithmetic, unary, member, index, calls, list literals) and implements the functions
 * we use; anything else is a parse or evaluation error, never a silent pass.
 */

export type CelValue = unknown;

type Node =
  | { k: 'lit'; v: CelValue }
  | { k: 'id'; name: string }
  | { k: 'member'; of: Node; name: string }
  | { k: 'index'; of: Node; at: Node }
  | { k: 'call'; fn: string; target?: Node; args: Node[] }
  | { k: 'list'; items: Node[] }
  | { k: 'unary'; op: '!' | '-'; arg: Node }
  | { k: 'binary'; op: string; left: Node; right: Node }
  | { k: 'cond'; test: Node; then: Node; else: Node };

export class CelError extends Error {
  override name = 'CelError';
}

const tokenRe =
  /\s*(?:(\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)|(\d+)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()[\]]))/y;

type Token = { t: 'num' | 'int' | 'str' | 'id' | 'op'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  tokenRe.lastIndex = 0;
  while (tokenRe.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(tokenRe.lastIndex))) break;
    const at = tokenRe.lastIndex;
    const m = tokenRe.exec(src);
    if (!m) throw new CelError(`cannot parse CEL at ${at}: ${src.slice(at, at + 20)}`);
    if (m[1]) out.push({ t: 'num', v: m[1] });
    else if (m[2]) out.push({ t: 'int', v: m[2] });
    else if (m[3]) out.push({ t: 'str', v: m[3] });
    else if (m[4]) out.push({ t: 'id', v: m[4] });
    else if (m[5]) out.push({ t: 'op', v: m[5] });
  }
  return out;
}

function unquote(s: string): string {
  return s.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}
  parse(): Node {
    const n = this.cond();
    if (this.i < this.toks.length) throw new CelError(`unexpected "${this.toks[this.i]?.v}"`);
    return n;
  }
  private peek(v: string): boolean {
    const t = this.toks[this.i];
    return t !== undefined && (t.t === 'op' || t.t === 'id') && t.v === v;
  }
  private eat(v: string): boolean {
    if (!this.peek(v)) return false;
    this.i++;
    return true;
  }
  private expect(v: string): void {
    if (!this.eat(v)) throw new CelError(`expected "${v}" at token ${this.i}`);
  }
  private cond(): Node {
    const test = this.or();
    if (!this.eat('?')) return test;
    const then = this.cond();
    this.expect(':');
    return { k: 'cond', test, then, else: this.cond() };
  }
  private binaryLevel(ops: string[], next: () => Node): Node {
    let left = next();
    for (;;) {
      const op = ops.find((o) => this.peek(o));
      if (!op) return left;
      this.i++;
      left = { k: 'binary', op, left, right: next() };
    }
  }
  private or = (): Node => this.binaryLevel(['||'], this.and);
  private and = (): Node => this.binaryLevel(['&&'], this.rel);
  private rel = (): Node => this.binaryLevel(['==', '!=', '<=', '>=', '<', '>', 'in'], this.add);
  private add = (): Node => this.binaryLevel(['+', '-'], this.mul);
  private mul = (): Node => this.binaryLevel(['*', '/', '%'], this.unary);
  private unary = (): Node => {
    if (this.eat('!')) return { k: 'unary', op: '!', arg: this.unary() };
    if (this.eat('-')) return { k: 'unary', op: '-', arg: this.unary() };
    return this.postfix();
  };
  private args(): Node[] {
    const args: Node[] = [];
    if (this.eat(')')) return args;
    do args.push(this.cond());
    while (this.eat(','));
    this.expect(')');
    return args;
  }
  private postfix(): Node {
    let n = this.primary();
    for (;;) {
      if (this.eat('.')) {
        const t = this.toks[this.i++];
        if (t?.t !== 'id') throw new CelError('expected a field name after "."');
        n = this.eat('(')
          ? { k: 'call', fn: t.v, target: n, args: this.args() }
          : { k: 'member', of: n, name: t.v };
      } else if (this.eat('[')) {
        const at = this.cond();
        this.expect(']');
        n = { k: 'index', of: n, at };
      } else return n;
    }
  }
  private primary(): Node {
    const t = this.toks[this.i++];
    if (!t) throw new CelError('unexpected end of expression');
    if (t.t === 'num') return { k: 'lit', v: Number(t.v) };
    if (t.t === 'int') return { k: 'lit', v: Number(t.v) };
    if (t.t === 'str') return { k: 'lit', v: unquote(t.v) };
    if (t.t === 'op' && t.v === '(') {
      const n = this.cond();
      this.expect(')');
      return n;
    }
    if (t.t === 'op' && t.v === '[') {
      const items: Node[] = [];
      if (!this.eat(']')) {
        do items.push(this.cond());
        while (this.eat(','));
        this.expect(']');
      }
      return { k: 'list', items };
    }
    if (t.t === 'id') {
      if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { k: 'lit', v: null };
      if (this.eat('(')) return { k: 'call', fn: t.v, args: this.args() };
      return { k: 'id', name: t.v };
    }
    throw new CelError(`unexpected "${t.v}"`);
  }
}

/** Parses a CEL expression (throws CelError on syntax outside the supported grammar). */
export function parseCel(src: string): Node {
  return new Parser(tokenize(src)).parse();
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function equal(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return a === b;
}

function field(of: unknown, name: string): unknown {
  if (!isObject(of)) throw new CelError(`no field "${name}" on a non-object`);
  if (!(name in of)) throw new CelError(`no such key: ${name}`);
  return of[name];
}

function num(v: unknown): number {
  if (typeof v !== 'number') throw new CelError(`expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function evaluate(n: Node, env: Record<string, unknown>): unknown {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'id':
      if (!(n.name in env)) throw new CelError(`undeclared reference to "${n.name}"`);
      return env[n.name];
    case 'member':
      return field(evaluate(n.of, env), n.name);
    case 'index': {
      const of = evaluate(n.of, env);
      const at = evaluate(n.at, env);
      if (Array.isArray(of)) {
        const v = of[num(at)];
        if (v === undefined) throw new CelError(`index ${at} out of range`);
        return v;
      }
      return field(of, String(at));
    }
    case 'list':
      return n.items.map((i) => evaluate(i, env));
    case 'unary': {
      const v = evaluate(n.arg, env);
      if (n.op === '!') {
        if (typeof v !== 'boolean') throw new CelError('! needs a bool');
        return !v;
      }
      return -num(v);
    }
    case 'cond': {
      const t = evaluate(n.test, env);
      if (typeof t !== 'boolean') throw new CelError('?: needs a bool condition');
      return evaluate(t ? n.then : n.else, env);
    }
    case 'binary':
      return binary(n.op, n.left, n.right, env);
    case 'call':
      return call(n, env);
  }
}

/** && and || are commutative in CEL: an error on one side is absorbed if the other side decides. */
function logical(op: '&&' | '||', left: Node, right: Node, env: Record<string, unknown>): boolean {
  const decides = op === '||';
  const side = (s: Node): boolean | CelError => {
    try {
      const v = evaluate(s, env);
      if (typeof v !== 'boolean') return new CelError(`${op} needs bools`);
      return v;
    } catch (e) {
      if (e instanceof CelError) return e;
      throw e;
    }
  };
  const l = side(left);
  if (l === decides) return decides;
  const r = side(right);
  if (r === decides) return decides;
  if (l instanceof CelError) throw l;
  if (r instanceof CelError) throw r;
  return !decides;
}

function binary(op: string, left: Node, right: Node, env: Record<string, unknown>): unknown {
  if (op === '&&' || op === '||') return logical(op, left, right, env);
  const a = evaluate(left, env);
  const b = evaluate(right, env);
  switch (op) {
    case '==':
      return equal(a, b);
    case '!=':
      return !equal(a, b);
    case 'in':
      if (Array.isArray(b)) return b.some((x) => equal(x, a));
      if (isObject(b)) return typeof a === 'string' && a in b;
      throw new CelError('in needs a list or map');
    case '<':
    case '<=':
    case '>':
    case '>=': {
      if (
        !(
          (typeof a === 'number' && typeof b === 'number') ||
          (typeof a === 'string' && typeof b === 'string')
        )
      )
        throw new CelError(`no matching overload for ${op}`);
      return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
    }
    case '+':
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      return num(a) + num(b);
    case '-':
      return num(a) - num(b);
    case '*':
      return num(a) * num(b);
    case '/':
      if (num(b) === 0) throw new CelError('division by zero');
      return num(a) / num(b);
    case '%':
      return num(a) % num(b);
  }
  throw new CelError(`unsupported operator ${op}`);
}

function size(v: unknown): number {
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (isObject(v)) return Object.keys(v).length;
  throw new CelError('size() needs a string, list or map');
}

function str(v: unknown, fn: string): string {
  if (typeof v !== 'string') throw new CelError(`${fn}() needs a string`);
  return v;
}

function call(n: Extract<Node, { k: 'call' }>, env: Record<string, unknown>): unknown {
  if (n.fn === 'has' && !n.target) {
    const arg = n.args[0];
    if (n.args.length !== 1 || arg?.k !== 'member') throw new CelError('has() takes one field selection');
    const of = evaluate(arg.of, env);
    return isObject(of) && arg.name in of;
  }
  const target = n.target === undefined ? undefined : evaluate(n.target, env);
  const args = n.args.map((a) => evaluate(a, env));
  switch (n.fn) {
    case 'size':
      return size(n.target ? target : args[0]);
    case 'matches':
      return new RegExp(str(args[0], 'matches')).test(str(target, 'matches'));
    case 'startsWith':
      return str(target, n.fn).startsWith(str(args[0], n.fn));
    case 'endsWith':
      return str(target, n.fn).endsWith(str(args[0], n.fn));
    case 'contains':
      return str(target, n.fn).includes(str(args[0], n.fn));
  }
  throw new CelError(`unsupported function ${n.fn}()`);
}

/** Evaluates a parsed rule; CEL rules must yield a bool. */
export function evalCel(rule: Node | string, env: Record<string, unknown>): boolean {
  const v = evaluate(typeof rule === 'string' ? parseCel(rule) : rule, env);
  if (typeof v !== 'boolean') throw new CelError(`rule evaluated to ${JSON.stringify(v)}, not a bool`);
  return v;
}

/** Whether a rule compares with the stored object (a transition rule, skipped on create). */
export function isTransitionRule(rule: string): boolean {
  return tokenize(rule).some((t) => t.t === 'id' && t.v === 'oldSelf');
}
