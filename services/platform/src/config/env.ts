/**
 * Flag-then-environment lookup: a flag the user typed wins, then the environment variable, then the default.
 * The parsed value remembers where it came from so an error names the right source.
 */
export interface Setting<T> {
  /** The flag as typed on the command line, e.g. `--nats-url`. */
  flag: string;
  /** The environment variable consulted when the flag is absent, e.g. `NATS_URL`. */
  env?: string;
  parse: (raw: string, field: string) => T;
}

export function resolveSetting<T>(
  setting: Setting<T>,
  flagValue: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): T | undefined {
  if (flagValue !== undefined) return setting.parse(flagValue, setting.flag);
  if (setting.env !== undefined) {
    const raw = env[setting.env];
    if (raw !== undefined && raw !== '') return setting.parse(raw, setting.env);
  }
  return undefined;
}
