/**
 * Renders charts/rlhf with the real Helm binary (node scripts/fetch-helm.mjs puts it in .tools/), from a
 * copy in a temp directory (Helm's cache and the values files stay there).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Kept in step with helmVersion in scripts/fetch-helm.mjs.
const helm = join(root, '.tools/helm-v3.17.2/helm');

export type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] };
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  rules?: Rule[];
  // biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as loose JSON
  [k: string]: any;
};

export interface ChartRenderer {
  /** `helm template` with `values` (written to a file) and `--set` pairs; fails the test on an error. */
  render(values?: object, set?: string[]): K8sObject[];
  /** The same, returning Helm's exit status and stderr instead of failing. */
  tryRender(values?: object, set?: string[]): { status: number | null; err: string };
  dispose(): void;
}

export function chartRenderer(): ChartRenderer {
  assert.ok(existsSync(helm), `the helm binary is missing at ${helm}: run \`node scripts/fetch-helm.mjs\``);
  const work = mkdtempSync(join(tmpdir(), 'rlhf-chart-'));
  const chart = join(work, 'rlhf');
  cpSync(join(root, 'charts/rlhf'), chart, { recursive: true });
  let n = 0;
  const run = (values: object, set: string[]) => {
    const file = join(work, `values-${n++}.yaml`);
    writeFileSync(file, stringify(values));
    const args = ['template', 'rlhf', chart, '--namespace', 'rlhf-system', '-f', file];
    for (const s of set) args.push('--set', s);
    return spawnSync(helm, args, {
      encoding: 'utf8',
      env: { ...process.env, HELM_CACHE_HOME: join(work, 'cache') },
    });
  };
  return {
    render(values = {}, set = []) {
      const r = run(values, set);
      assert.equal(r.status, 0, `helm template failed:\n${r.stderr}`);
      return parseAllDocuments(r.stdout)
        .map((d) => d.toJS() as K8sObject | null)
        .filter((o): o is K8sObject => o !== null);
    },
    tryRender(values = {}, set = []) {
      const r = run(values, set);
      return { status: r.status, err: r.stderr };
    },
    dispose: () => rmSync(work, { recursive: true, force: true }),
  };
}
