/**
 * The NATS flags of the commands that connect (run, stage, controller, model push|pull, data push|pull, experiment), from the
 * platform's one flag table. Nothing is filled in from the environment at definition time, so `--help`
 * never prints a NATS_URL that holds a password; the environment is read when the command runs.
 */
import { natsAuthFlags, natsStartWaitFlag, resolveNatsFlags } from '@rlhf/platform/core';
import type { Command } from 'commander';

/** Adds --nats-url (described per command), the credential and TLS flags, and --nats-start-wait. */
export function addNatsOptions(cmd: Command, urlDescription: string, startWaitDefault: string): Command {
  cmd.option('--nats-url <URL>', `${urlDescription} [env NATS_URL]`);
  for (const f of natsAuthFlags) cmd.option(`--${f.name} <${f.value}>`, `${f.description} [env ${f.env}]`);
  cmd.option(
    `--${natsStartWaitFlag.name} <${natsStartWaitFlag.value}>`,
    `${natsStartWaitFlag.description} [env ${natsStartWaitFlag.env}, default ${startWaitDefault}]`,
  );
  return cmd;
}

/** The NATS config of a command's flags and the environment (startWaitMs defaults to `defaultWaitMs`). */
export function natsConfigOf(flags: object, defaultWaitMs: number): ReturnType<typeof resolveNatsFlags> {
  return resolveNatsFlags(flags as Record<string, string | undefined>, process.env, defaultWaitMs);
}
