import { readFileSync } from 'node:fs';
import type { Command } from 'commander';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function registerVersion(program: Command): void {
  program
    .command('version')
    .summary('print the versions of rlhf, its API and its runtime')
    .option('--json', 'print JSON instead of text')
    .action((flags: { json?: boolean }) => {
      const info = {
        rlhf: packageVersion(),
        api: 'rlhf.v1',
        crd: 'rlhf.dev/v1alpha1',
        node: process.versions.node,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(info)}\n`);
      else process.stdout.write(`rlhf ${info.rlhf} (api ${info.api}, crd ${info.crd}, node ${info.node})\n`);
    });
}

export { packageVersion };
