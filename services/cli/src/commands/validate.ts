import { readFile } from 'node:fs/promises';
import { RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { readPlacementPolicy } from '../placement-policy-file.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .summary('check an RLHFRun file and show it with every default filled in')
    .description(
      'Checks a run file the way `rlhf run` and the CRD do, and lists every bad field with its path\n(e.g. spec.dpo.beta: must be > 0, got 0). With --print, writes the defaulted run as YAML.\nWith --placement-policy, also checks spec.placement the way the controller does.\nWarns about file:// inputs under no spec.placement.volumes mount: a cluster run reads them only there.',
    )
    .requiredOption('-f, --file <FILE>', 'the RLHFRun manifest (YAML)')
    .option('--print', 'print the run with defaults applied')
    .option(
      '--placement-policy <FILE>',
      "also check spec.placement against a cluster's placement policy (the chart's controller.placementPolicy)",
    )
    .action(async (f: { file: string; print?: boolean; placementPolicy?: string }) => {
      const { InvalidRunError, parseRunYaml, placementProblems, unmountedInputs } = await import(
        '@rlhf/run-spec'
      );
      const policy = f.placementPolicy ? await readPlacementPolicy(f.placementPolicy) : undefined;
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
        const refused = policy ? placementProblems(run.spec, policy) : [];
        if (refused.length) {
          const lines = refused.map((p) => `  ${p.path}: ${p.message}`).join('\n');
          process.stderr.write(
            `error: ${f.file} asks for a placement the policy ${f.placementPolicy} does not allow (the controller would set InvalidSpec):\n${lines}\n`,
          );
          process.exitCode = 2;
          return;
        }
        // A local run reads file:// inputs where they are; a cluster run's pods see only mounted volumes.
        // The chart's artifacts.volumes are unknown here, so this warns; the controller refuses.
        for (const p of unmountedInputs(run.spec, []))
          process.stderr.write(
            `warning: ${p.path}: ${p.message} (on a cluster; the chart's artifacts.volumes count too, and a local \`rlhf run\` reads it as is)\n`,
          );
        if (f.print) process.stdout.write(stringify(run));
        else {
          process.stdout.write(
            `${f.file}: valid RLHFRun ${run.metadata.name} (${run.spec.iterations} iterations, judge ${run.spec.judge.type})${policy ? `; placement allowed by ${f.placementPolicy}` : ''}\n`,
          );
          // Which engine runs each stage and where its GPUs go: GPUs only where a GPU engine runs.
          const { stageEngines } = await import('@rlhf/workflow');
          const lines = stageEngines(run.spec);
          const width = Math.max(...lines.map((l) => l.stage.length));
          process.stdout.write(
            `engines (GPUs only where a GPU engine runs: vllm, trainjob):\n${lines
              .map((l) => `  ${l.stage.padEnd(width)}  ${l.engine.padEnd(8)}  ${l.where}`)
              .join('\n')}\n`,
          );
        }
      } catch (e) {
        if (!(e instanceof InvalidRunError)) throw e;
        process.stderr.write(`error: ${e.message}\n`);
        process.exitCode = 2;
      }
    });
}
