/**
 * GPT-2's reversible byte <-> character table. BPE vocabularies are strings, and a byte-level BPE must be
 * able to spell any byte sequence; GPT-2 maps each of the 256 bytes to a printable character so tokens
 * stay readable in `tokenizer.json` (a space becomes `Ġ`, a newline `Ċ`). Bytes that are already
 * printable Latin-1 keep their own character; the other 68 are shifted to code points 256 and up, in
 * byte order. HF's ByteLevel pre-tokenizer and decoder use the same table, so ours must match it exactly.
 */
function isPrintableLatin1(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildTable(): string[] {
  const table: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    table.push(String.fromCodePoint(isPrintableLatin1(byte) ? byte : 256 + shifted++));
  }
  return table;
}

/** `BYTE_TO_CHAR[b]` is the character that stands for byte `b`. */
export const BYTE_TO_CHAR: readonly string[] = buildTable();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((ch, byte) => [ch, byte]));

const utf8 = new TextEncoder();

/** The byte-level spelling of `text`: its UTF-8 bytes, one table character each. */
export function toByteLevel(text: string): string {
  let out = '';
  for (const byte of utf8.encode(text)) out += BYTE_TO_CHAR[byte];
  return out;
}

/** The bytes a byte-level string stands for; undefined if it holds a character outside the table. */
export function fromByteLevel(chars: string): Uint8Array | undefined {
  const bytes: number[] = [];
  for (const ch of chars) {
    const byte = CHAR_TO_BYTE.get(ch);
    if (byte === undefined) return undefined;
    bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}
