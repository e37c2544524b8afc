#!/usr/bin/env node
// Writes the CRDs generated from the run-spec schema (services/run-spec/src/crd.ts) to deploy/crds and
// charts/rlhf/crds (Helm installs CRDs from a chart's crds/ folder). The output is a pure function of the
// schema, so it is committed and a test checks it is up to date.
//
// Usage: node scripts/gen-crds.mjs [--check]   (--check writes nothing and exits 1 if a file is stale)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const { crdFiles } = await import('../services/run-spec/src/crd.ts');

const root = fileURLToPath(new URL('..', import.meta.url));
export const crdDirs = ['deploy/crds', 'charts/rlhf/crds'];
const check = process.argv.includes('--check');
let stale = 0;
for (const dir of crdDirs) {
  for (const [name, text] of Object.entries(crdFiles())) {
    const path = join(root, dir, name);
    const same = existsSync(path) && readFileSync(path, 'utf8') === text;
    if (same) continue;
    if (check) {
      console.error(`${dir}/${name} is stale: run npm run crds:gen`);
      stale++;
      continue;
    }
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote ${dir}/${name}`);
  }
}
process.exit(stale ? 1 : 0);
