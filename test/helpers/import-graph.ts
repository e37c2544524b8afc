/**
 * The import graph of the workspace's TypeScript sources, file to file, for the import-cycle test. Import
 * specifiers come from TypeScript's own pre-processor (it skips comments and strings, and sees `import type`,
 * `export ... from` and `import()` alike); resolution is done here the way Node resolves this repo: relative
 * paths with `.js` standing for the `.ts` file, and `@rlhf/x` or `@rlhf/x/sub` through the `exports` map of
 * the workspace package named `@rlhf/x`. Type-only imports count: a cycle of types is still two files that
 * cannot be understood one without the other.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export interface WorkspacePackage {
  name: string;
  /** Absolute directory of the package. */
  dir: string;
  /** Subpath ('.', './sub') to the absolute file it exports. */
  exports: Map<string, string>;
  /** Workspace packages named in dependencies, devDependencies or peerDependencies. */
  dependsOn: string[];
}

export interface ImportGraph {
  /** Repo-relative file to the repo-relative files it imports (only files inside the scanned set). */
  edges: Map<string, Set<string>>;
  /** Imports of a workspace package that its `exports` do not provide, or relative paths with no file. */
  unresolved: { file: string; specifier: string }[];
}

interface PackageJson {
  name?: string;
  workspaces?: string[];
  exports?: string | Record<string, unknown>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const readJson = (file: string): PackageJson => JSON.parse(readFileSync(file, 'utf8')) as PackageJson;

/** Expands a repo-relative pattern whose segments may be `*` (one directory level) into existing dirs. */
export function expandDirs(root: string, pattern: string): string[] {
  let dirs = [resolve(root)];
  for (const segment of pattern.split('/').filter(Boolean)) {
    dirs = dirs.flatMap((dir) => {
      const names = segment === '*' ? readdirSync(dir).sort() : [segment];
      return names.map((name) => join(dir, name)).filter((d) => existsSync(d) && statSync(d).isDirectory());
    });
  }
  return dirs;
}

/** The file an `exports` entry names: a string, or the `import`/`default` branch of a condition map. */
function exportTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const conditions = value as Record<string, unknown>;
    return exportTarget(conditions.import ?? conditions.default ?? conditions.types);
  }
  return undefined;
}

/** The workspace packages listed by the root package.json's `workspaces`. */
export function readWorkspace(root: string): WorkspacePackage[] {
  const patterns = readJson(join(root, 'package.json')).workspaces ?? [];
  const found = patterns
    .flatMap((p) => expandDirs(root, p))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, json: readJson(join(dir, 'package.json')) }));
  const names = new Set(found.map((p) => p.json.name).filter((n): n is string => n !== undefined));
  return found.map(({ dir, json }) => {
    const raw = typeof json.exports === 'string' ? { '.': json.exports } : (json.exports ?? {});
    const exports = new Map<string, string>();
    for (const [subpath, value] of Object.entries(raw)) {
      const target = exportTarget(value);
      if (target) exports.set(subpath, resolve(dir, target));
    }
    const deps = { ...json.dependencies, ...json.devDependencies, ...json.peerDependencies };
    return {
      name: json.name ?? relative(root, dir),
      dir,
      exports,
      dependsOn: Object.keys(deps)
        .filter((d) => names.has(d))
        .sort(),
    };
  });
}

/** Every import specifier of a TypeScript source, in order, comments and strings excluded. */
export function importSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) tsFiles(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** `./x.js` means `./x.ts` (NodeNext); a bare `./x` may be `./x.ts` or `./x/index.ts`. */
function resolveRelative(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier);
  const candidates = /\.[cm]?js$/.test(base)
    ? [base.replace(/\.([cm]?)js$/, '.$1ts'), base]
    : [base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** `@scope/name` or `@scope/name/sub` split into the package name and its `exports` subpath. */
function splitPackageSpecifier(specifier: string): { name: string; subpath: string } {
  const parts = specifier.split('/');
  const count = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(count).join('/');
  return { name: parts.slice(0, count).join('/'), subpath: rest ? `./${rest}` : '.' };
}

/** The file-to-file import graph of every `.ts` file under the directories `patterns` expand to. */
export function scanImports(root: string, patterns: string[], packages: WorkspacePackage[]): ImportGraph {
  const byName = new Map(packages.map((p) => [p.name, p]));
  const files = patterns.flatMap((p) => expandDirs(root, p)).flatMap((dir) => tsFiles(dir));
  const scanned = new Set(files);
  const edges = new Map<string, Set<string>>();
  const unresolved: ImportGraph['unresolved'] = [];
  for (const file of files) {
    const key = relative(root, file);
    const targets = new Set<string>();
    edges.set(key, targets);
    for (const specifier of importSpecifiers(readFileSync(file, 'utf8'))) {
      let target: string | undefined;
      if (specifier.startsWith('.')) {
        target = resolveRelative(file, specifier);
        if (!target) unresolved.push({ file: key, specifier });
      } else {
        const { name, subpath } = splitPackageSpecifier(specifier);
        const pkg = byName.get(name);
        if (!pkg) continue; // a third-party module: it cannot import back into the workspace
        target = pkg.exports.get(subpath);
        if (!target) unresolved.push({ file: key, specifier });
      }
      if (target && scanned.has(target)) targets.add(relative(root, target));
    }
  }
  return { edges, unresolved };
}

/** Package name to the workspace packages its package.json depends on. */
export function packageGraph(packages: WorkspacePackage[]): Map<string, string[]> {
  return new Map(packages.map((p) => [p.name, p.dependsOn]));
}
