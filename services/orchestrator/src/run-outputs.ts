/**
 * What a finished local run leaves in its output directory, whichever executor ran its shards: the models
 * (export-models.ts), summary.json, report.html and charts/*.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactStore } from '@rlhf/platform';
import type { RunSummary } from '@rlhf/workflow';
import { exportRunModels } from './export-models.js';
import { renderReport } from './report/report-html.js';

/** JSON has no NaN or Infinity: write them as null. */
const jsonSafe = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v);

export async function writeRunOutputs(store: ArtifactStore, summary: RunSummary, out: string): Promise<void> {
  await exportRunModels(store, summary, join(out, 'models'));
  const report = renderReport(summary);
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, jsonSafe, 2)}\n`);
  await writeFile(join(out, 'report.html'), report.html);
  await mkdir(join(out, 'charts'), { recursive: true });
  for (const [name, svg] of Object.entries(report.images)) await writeFile(join(out, 'charts', name), svg);
}
