import { readFile } from 'node:fs/promises';
import { RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .summary('check an RLHFRun file and show it with every default filled in')
    .description(
      'Checks a run file the way `rlhf run` and the CRD do, and lists every bad field with its path\n(e.g. spec.dpo.beta: must be > 0, got 0). With --print, writes the defaulted run as YAML.',
    )
    .requiredOption('-f, --file <FILE>', 'the RLHFRun manifest (YAML)')
    .option('--print', 'print the run with defaults applied')
    .action(async (f: { file: string; print?: boolean }) => {
      const { InvalidRunError, parseRunYaml } = await import('@rlhf/run-spec');
      const { stringify } = await import('yaml');
      let text: string;
      try {
        text = await readFile(f.file, 'utf8');
      } catch (cause) {
        throw new RlhfError('NOT_FOUND', `cannot read ${f.file}`, {
          field: '--file',
          fix: 'pass the path of an RLHFRun YAML file',
          cause,
        });
      }
      try {
        const run = parseRunYaml(text, f.file);
        if (f.print) process.stdout.write(stringify(run));
        else
          process.stdout.write(
            `${f.file}: valid RLHFRun ${run.metadata.name} (${run.spec.iterations} iterations, judge ${run.spec.judge.type})\n`,
          );
      } catch (e) {
        if (!(e instanceof InvalidRunError)) throw e;
        process.stderr.write(`error: ${e.message}\n`);
        process.exitCode = 2;
      }
    });
}
