/**
 * How a command ends on an error: a user mistake (an RlhfError, a bad flag) prints one line naming the field
 * and the fix and exits 2; anything unexpected prints its stack and exits 1.
 */
import { asRlhfError } from './errors.js';
import { redact } from './observability/redact.js';

export function formatError(err: unknown): { text: string; exitCode: number } {
  const known = asRlhfError(err);
  if (known) {
    const exitCode = known.code === 'INVALID_ARGUMENT' || known.code === 'NOT_FOUND' ? 2 : 1;
    return { text: `error: ${known.describe()}`, exitCode };
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    return { text: `error: ${(err as Error).message} (see --help)`, exitCode: 2 };
  }
  return { text: `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, exitCode: 1 };
}

export function exitWithError(err: unknown): never {
  const { text, exitCode } = formatError(err);
  // The last word before a terminal: no URL password, token, seed or JWT leaves the process this way.
  process.stderr.write(`${redact(text)}\n`);
  process.exit(exitCode);
}
