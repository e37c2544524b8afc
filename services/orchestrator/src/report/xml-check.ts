/**
 * A tiny, strict XML parser the report's tests use to prove the SVGs (and the HTML page, which is written as
 * well-formed XHTML-style markup) are well-formed: balanced and properly nested tags, quoted attributes
 * without `<`, no duplicate attributes, `&` only in known entity references, a single root element. It
 * returns the element tree so tests can assert on structure. Not a general XML parser: no CDATA, no DTD
 * internals, no namespaces semantics.
 */

/** An element of the parsed tree. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Decoded text directly inside this element (not its descendants), concatenated. */
  text: string;
  /** Children and text runs in document order. */
  nodes: (XmlElement | string)[];
}

const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: string): string {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const ch = raw[i] as string;
    if (ch !== '&') {
      out += ch;
      i++;
      continue;
    }
    const end = raw.indexOf(';', i);
    if (end < 0) throw new Error(`not well-formed: bare "&" in ${where}`);
    const ref = raw.slice(i + 1, end);
    if (ref in ENTITY) out += ENTITY[ref];
    else if (/^#[0-9]{1,7}$/.test(ref)) out += String.fromCodePoint(Number(ref.slice(1)));
    else if (/^#x[0-9a-fA-F]{1,6}$/.test(ref)) out += String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    else throw new Error(`not well-formed: unknown entity "&${ref};" in ${where}`);
    i = end + 1;
  }
  return out;
}

const isNameStart = (ch: string): boolean => /[A-Za-z_:]/.test(ch);
const isNameChar = (ch: string): boolean => /[A-Za-z0-9_:.-]/.test(ch);
const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r';

/**
 * Parses `text` and returns its root element; throws with the offending offset on anything not well-formed.
 * A leading `<?xml ...?>` declaration and `<!DOCTYPE ...>` are accepted before the root; comments anywhere.
 */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const fail = (msg: string): never => {
    throw new Error(`not well-formed at offset ${i}: ${msg} (near ${JSON.stringify(text.slice(i, i + 40))})`);
  };
  const readName = (): string => {
    const start = i;
    if (!isNameStart(text[i] ?? '')) fail('expected a name');
    while (i < text.length && isNameChar(text[i] as string)) i++;
    return text.slice(start, i);
  };
  while (i < text.length) {
    if (text[i] !== '<') {
      const next = text.indexOf('<', i);
      const raw = text.slice(i, next < 0 ? text.length : next);
      if (raw.includes(']]>')) fail('"]]>" in text');
      const top = stack[stack.length - 1];
      if (top) {
        const decoded = decode(raw, `text of <${top.name}>`);
        top.text += decoded;
        top.nodes.push(decoded);
      } else if (raw.trim() !== '') fail('text outside the root element');
      i = next < 0 ? text.length : next;
      continue;
    }
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      if (text.slice(i + 4, end).includes('--')) fail('"--" inside a comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', i)) {
      if (root || stack.length) fail('processing instruction after the root started');
      const end = text.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
      continue;
    }
    if (text.startsWith('<!', i)) {
      if (!/^<!DOCTYPE\s/i.test(text.slice(i, i + 10))) fail('unsupported markup declaration');
      if (root || stack.length) fail('DOCTYPE after the root started');
      const end = text.indexOf('>', i);
      if (end < 0 || text.slice(i, end).includes('[')) fail('unsupported DOCTYPE');
      i = end + 1;
      continue;
    }
    if (text.startsWith('</', i)) {
      i += 2;
      const name = readName();
      while (isSpace(text[i])) i++;
      if (text[i] !== '>') fail(`expected ">" to close </${name}`);
      i++;
      const top = stack.pop();
      if (!top) fail(`closing </${name}> without an open element`);
      else if (top.name !== name) fail(`closing </${name}> but <${top.name}> is open`);
      continue;
    }
    // Start tag.
    i++;
    const el: XmlElement = { name: readName(), attrs: {}, children: [], text: '', nodes: [] };
    if (!stack.length && root) fail(`second root element <${el.name}>`);
    for (;;) {
      const hadSpace = isSpace(text[i]);
      while (isSpace(text[i])) i++;
      if (text.startsWith('/>', i) || text[i] === '>') break;
      if (i >= text.length) fail(`unterminated <${el.name}>`);
      if (!hadSpace) fail(`attributes of <${el.name}> must be separated by white space`);
      const attr = readName();
      while (isSpace(text[i])) i++;
      if (text[i] !== '=') fail(`attribute ${attr} of <${el.name}> has no value`);
      i++;
      while (isSpace(text[i])) i++;
      const q = text[i];
      if (q !== '"' && q !== "'") fail(`attribute ${attr} of <${el.name}> is not quoted`);
      const end = text.indexOf(q as string, i + 1);
      if (end < 0) fail(`unterminated value of ${attr}`);
      const raw = text.slice(i + 1, end);
      if (raw.includes('<')) fail(`"<" in the value of ${attr}`);
      if (attr in el.attrs) fail(`duplicate attribute ${attr} on <${el.name}>`);
      el.attrs[attr] = decode(raw, `attribute ${attr} of <${el.name}>`);
      i = end + 1;
    }
    const parent = stack[stack.length - 1];
    if (parent) {
      parent.children.push(el);
      parent.nodes.push(el);
    } else root = el;
    if (text.startsWith('/>', i)) i += 2;
    else {
      i++;
      stack.push(el);
    }
  }
  if (stack.length) throw new Error(`not well-formed: <${stack[stack.length - 1]?.name}> is never closed`);
  if (!root) throw new Error('not well-formed: no root element');
  return root;
}

/** Every element of the tree (the root included) that satisfies `pred`, in document order. */
export function findAll(el: XmlElement, pred: (e: XmlElement) => boolean): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    if (pred(e)) out.push(e);
    for (const c of e.children) walk(c);
  };
  walk(el);
  return out;
}

/** The decoded text of an element and all its descendants, in document order. */
export function textOf(el: XmlElement): string {
  return el.nodes.map((n) => (typeof n === 'string' ? n : textOf(n))).join('');
}

/** Whether an element's class attribute contains `cls`. */
export function hasClass(el: XmlElement, cls: string): boolean {
  return (el.attrs.class ?? '').split(/\s+/).includes(cls);
}
