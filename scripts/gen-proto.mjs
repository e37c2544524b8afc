#!/usr/bin/env node
// Regenerates the TypeScript of the rlhf.v1 contract: `buf generate` in proto/ with proto/buf.gen.yaml,
// which runs the locally installed ts-proto plugin (no network). The output is a pure function of the
// .proto files and the pinned buf and ts-proto versions, so it is committed and a test checks it.
// Nothing formats it afterwards (biome ignores proto/gen).
//
// Usage: node scripts/gen-proto.mjs [OUTPUT_BASE]
//   OUTPUT_BASE  directory to generate into; the code lands in OUTPUT_BASE/gen (default: proto, so
//                proto/gen). The staleness test passes a temporary directory.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const protoDir = join(root, 'proto');
const buf = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'buf.cmd' : 'buf');

if (process.argv.length > 3 || ['-h', '--help'].includes(process.argv[2] ?? '')) {
  console.error('usage: node scripts/gen-proto.mjs [OUTPUT_BASE]   (code goes to OUTPUT_BASE/gen)');
  process.exit(2);
}
if (!existsSync(buf)) {
  console.error(`gen-proto: ${buf} is missing; run npm ci at the repository root`);
  process.exit(1);
}

const args = ['generate'];
// buf resolves the template's `out: gen` below --output, and `clean: true` empties that directory first,
// so files of deleted .proto files do not linger.
if (process.argv[2] !== undefined) args.push('--output', resolve(process.argv[2]));
const r = spawnSync(buf, args, { cwd: protoDir, stdio: 'inherit' });
if (r.error) {
  console.error(`gen-proto: cannot run ${buf}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
