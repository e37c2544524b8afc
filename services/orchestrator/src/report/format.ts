/**
 * Text helpers shared by the SVG charts and the HTML report: escaping for HTML/XML and deterministic number
 * formatting (no locale, no Intl: the same input renders byte for byte the same everywhere).
 */

/** What the report shows for a missing value (null, NaN, infinite). */
export const MISSING = '–';

const MINUS = '\u2212';

// Characters that XML 1.0 forbids (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF) and lone surrogates.
// Model output can contain anything; these would make a standalone .svg unparseable, so they become U+FFFD.
const INVALID_XML =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes text for HTML and XML, in element content and in quoted attribute values alike (`& < > " '`), and
 * replaces characters XML cannot carry with U+FFFD.
 */
export function escapeXml(text: string): string {
  return String(text)
    .replace(INVALID_XML, '\uFFFD')
    .replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A finite number, or null for null/undefined/NaN/Infinity. */
export function finite(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Puts a typographic minus on negative numbers and never shows "-0". */
function signed(abs: string, negative: boolean): string {
  return negative && /[1-9]/.test(abs) ? `${MINUS}${abs}` : abs;
}

/** Inserts thousands separators (commas) into the integer part of an unsigned decimal string. */
function group(abs: string): string {
  const [int, frac] = abs.split('.');
  const grouped = (int ?? '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** `v` with a fixed number of decimals, thousands grouped, or "–" when missing. */
export function formatFixed(v: number | null | undefined, decimals: number): string {
  const x = finite(v);
  if (x === null) return MISSING;
  return signed(group(Math.abs(x).toFixed(decimals)), x < 0);
}

/** A rate in [0, 1] as a percentage, e.g. 0.8612 -> "86.1%", or "–" when missing. */
export function formatPercent(v: number | null | undefined, decimals = 1): string {
  const x = finite(v);
  return x === null ? MISSING : `${formatFixed(x * 100, decimals)}%`;
}

/** An integer count with thousands separators, or "–" when missing. */
export function formatCount(v: number | null | undefined): string {
  const x = finite(v);
  return x === null ? MISSING : formatFixed(Math.round(x), 0);
}

/**
 * A value of unknown magnitude with about `digits` significant digits and no exponent for everyday sizes
 * (0.001 -> "0.001", 0.00112 -> "0.00112", 29.44 -> "29.4", 12345 -> "12,345"), or "–" when missing.
 */
export function formatSignificant(v: number | null | undefined, digits = 3): string {
  const x = finite(v);
  if (x === null) return MISSING;
  if (x === 0) return '0';
  const abs = Math.abs(x);
  if (abs < 1e-6 || abs >= 1e15) return signed(abs.toPrecision(digits).replace('e+', 'e'), x < 0);
  const magnitude = Math.floor(Math.log10(abs));
  const decimals = Math.max(0, digits - 1 - magnitude);
  // Trim trailing zeros of the fraction so 0.0010 shows as 0.001.
  const text = abs
    .toFixed(Math.min(decimals, 20))
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
  return signed(group(text), x < 0);
}

/** Seconds as "12.3 s", "4 min 05 s" or "1 h 02 min", or "–" when missing. */
export function formatDuration(seconds: number | null | undefined): string {
  const x = finite(seconds);
  if (x === null || x < 0) return MISSING;
  if (x < 60) return `${x.toFixed(1)} s`;
  const total = Math.round(x);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${String(s).padStart(2, '0')} s`;
}
