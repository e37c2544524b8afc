#!/usr/bin/env node
// Regenerates proto/gen from proto/rlhf/v1/*.proto with buf and the local ts-proto plugin (no network).
// Usage: node scripts/gen-proto.mjs [OUT_DIR]   (default proto/gen; the staleness test passes a temp dir)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const protoDir = join(root, 'proto');
const out = resolve(process.argv[2] ?? join(protoDir, 'gen'));
const buf = join(root, 'node_modules/.bin/buf');

// buf resolves the template's `out` relative to the working directory, so write a template aimed at `out`.
const template = readFileSync(join(protoDir, 'buf.gen.yaml'), 'utf8').replace(/out: gen/, `out: ${out}`);
const scratch = mkdtempSync(join(tmpdir(), 'rlhf-buf-'));
const templatePath = join(scratch, 'buf.gen.yaml');
writeFileSync(templatePath, template.replace('../node_modules', join(root, 'node_modules')));
rmSync(out, { recursive: true, force: true });
const r = spawnSync(buf, ['generate', '--template', templatePath], { cwd: protoDir, stdio: 'inherit' });
rmSync(scratch, { recursive: true, force: true });
process.exit(r.status ?? 1);
