#!/usr/bin/env node
// The tools that generate and use the Python and Go client code of the rlhf.v1 contract (proto/buf.gen.python-go.yaml),
// cached in .tools/ so a second run takes no network and little time:
//   - protoc-gen-go and protoc-gen-go-grpc at pinned versions, built from the Go module proxy into
//     .tools/go-bin (`go install`, GOBIN set);
//   - a Python venv in .tools/py-venv with pinned grpcio and protobuf from PyPI (remade only when the pins
//     change: the venv keeps the pins it was made with);
//   - protoc (its builtin Python generator) and grpc_python_plugin, which come from Debian packages and
//     are only checked here.
//
// Usage: node scripts/codegen-tools.mjs [--check]
//   (none)    install what is missing, then print the tools' paths as JSON
//   --check   install nothing; exit 1 naming each missing tool and the command that installs it
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tools = join(root, '.tools');
const goBin = join(tools, 'go-bin');
const venv = join(tools, 'py-venv');
const python = join(venv, 'bin', 'python');

/** Go plugins: the module path `go install` takes, the version, and what `--version` prints for it. */
const goPlugins = [
  {
    name: 'protoc-gen-go',
    module: 'google.golang.org/protobuf/cmd/protoc-gen-go',
    version: 'v1.36.12',
    prints: 'protoc-gen-go v1.36.12',
  },
  {
    name: 'protoc-gen-go-grpc',
    module: 'google.golang.org/grpc/cmd/protoc-gen-go-grpc',
    version: 'v1.5.1',
    prints: 'protoc-gen-go-grpc 1.5.1',
  },
];

/**
 * The Python runtime of the generated client code. protobuf stays on 5.29: it loads the code Debian's protoc 3.21
 * generates, which newer runtimes are not promised to.
 */
const pythonRequirements = ['grpcio==1.85.1', 'protobuf==5.29.5'];

const debianTools = [
  { name: 'protoc', install: 'apt-get install -y protobuf-compiler' },
  { name: 'grpc_python_plugin', install: 'apt-get install -y protobuf-compiler-grpc' },
];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return {
    ok: !r.error && r.status === 0,
    out: `${r.stdout ?? ''}`.trim(),
    err: r.error?.message ?? `${r.stderr ?? ''}`.trim(),
  };
}

const onPath = (name) => run('sh', ['-c', `command -v ${name}`]).ok;
const goPluginOk = (p) => run(join(goBin, p.name), ['--version']).out === p.prints;
const stamp = join(venv, 'rlhf-requirements.txt');
const venvOk = () =>
  existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === pythonRequirements.join('\n');

const installCommands = {
  go: (p) => `GOBIN=${goBin} go install ${p.module}@${p.version}   (or: node scripts/codegen-tools.mjs)`,
  venv: () => 'node scripts/codegen-tools.mjs   (python3 -m venv .tools/py-venv and pip install of the pins)',
};

function missing() {
  const out = [];
  for (const t of debianTools) if (!onPath(t.name)) out.push(`${t.name}: ${t.install}`);
  if (!onPath('go')) out.push('go: install Go 1.24 or newer');
  if (!onPath('python3')) out.push('python3: apt-get install -y python3 python3-venv');
  for (const p of goPlugins) if (!goPluginOk(p)) out.push(`${p.name} ${p.version}: ${installCommands.go(p)}`);
  if (!venvOk()) out.push(`Python venv with ${pythonRequirements.join(', ')}: ${installCommands.venv()}`);
  return out;
}

function install() {
  for (const p of goPlugins) {
    if (goPluginOk(p)) continue;
    mkdirSync(goBin, { recursive: true });
    const r = run('go', ['install', `${p.module}@${p.version}`], {
      env: { ...process.env, GOBIN: goBin, GOFLAGS: '-mod=mod' },
    });
    if (!r.ok) throw new Error(`go install ${p.module}@${p.version} failed: ${r.err}`);
  }
  if (!venvOk()) {
    rmSync(venv, { recursive: true, force: true });
    let r = run('python3', ['-m', 'venv', venv]);
    if (!r.ok) throw new Error(`python3 -m venv ${venv} failed (apt-get install -y python3-venv?): ${r.err}`);
    r = run(python, [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--disable-pip-version-check',
      ...pythonRequirements,
    ]);
    if (!r.ok) throw new Error(`pip install ${pythonRequirements.join(' ')} failed: ${r.err}`);
    // Written last: a venv whose install broke off is made again next time.
    writeFileSync(stamp, pythonRequirements.join('\n'));
  }
}

const check = process.argv[2] === '--check';
if (process.argv.length > 3 || (process.argv[2] !== undefined && !check)) {
  console.error('usage: node scripts/codegen-tools.mjs [--check]');
  process.exit(2);
}
try {
  if (!check) install();
  const absent = missing();
  if (absent.length > 0) {
    console.error(`codegen-tools: missing, with the command that installs each:\n  ${absent.join('\n  ')}`);
    process.exit(1);
  }
  console.log(JSON.stringify({ python, goBin }));
} catch (e) {
  console.error(`codegen-tools: ${e.message}`);
  process.exit(1);
}
