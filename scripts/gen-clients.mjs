#!/usr/bin/env node
// Generates the Python and Go client code of the rlhf.v1 contract with proto/buf.gen.python-go.yaml, for clients
// in those languages. They are not committed; the default output, .tools/clients, is ignored by git.
// The generators come from `node scripts/codegen-tools.mjs` (run first here) and Debian's
// protobuf-compiler-grpc.
//
// Usage: node scripts/gen-clients.mjs [OUT]   (python/ and go/ land in OUT, default .tools/clients)
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.length > 3 || ['-h', '--help'].includes(process.argv[2] ?? '')) {
  console.error('usage: node scripts/gen-clients.mjs [OUT]   (default .tools/clients)');
  process.exit(2);
}
const out = resolve(process.argv[2] ?? join(root, '.tools', 'clients'));
const tools = spawnSync(process.execPath, [join(root, 'scripts/codegen-tools.mjs')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (tools.status !== 0) process.exit(1);
const buf = join(root, 'node_modules', '.bin', 'buf');
const r = spawnSync(buf, ['generate', '--template', 'buf.gen.python-go.yaml', '--output', out], {
  cwd: join(root, 'proto'),
  stdio: 'inherit',
});
if (r.status === 0) console.log(out);
process.exit(r.status ?? 1);
