/**
 * Structured JSON logs (pino) on stderr, so stdout stays free for a command's real output (JSONL, ports).
 * Every line carries the component name; callers add `requestId`, `run`, `iteration` with `child()`.
 */
import { type Logger, pino } from 'pino';
import type { LogLevel } from '../config/parse.js';

export type { Logger };

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stderr. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info';
  return pino(
    {
      name: component,
      level,
      base: { component, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
