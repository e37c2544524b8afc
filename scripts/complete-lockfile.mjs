#!/usr/bin/env node
// The npm registry these machines reach serves only the linux-x64 builds of a few native tools, so
// `npm install` leaves their other-platform optional packages out of package-lock.json, and `npm ci` then
// refuses the lock as out of sync. This adds those entries (version, os, cpu: what the public registry
// would have written), so the lock is complete and `npm ci` skips them by platform as usual.
// Run after any `npm install` that rewrites the lock: node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const platform = (suffix) => {
  const [os, cpu, libc] = suffix.replace('armv7', 'arm').split('-');
  return { os: [os], cpu: [cpu], ...(libc ? { libc: [libc] } : {}) };
};
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const m = /^@(biomejs\/cli|bufbuild\/buf)-(.+)$/.exec(dep);
    const key = `node_modules/${dep}`;
    if (!m || lock.packages[key]) continue;
    lock.packages[key] = { version, ...platform(m[2]), optional: true };
    added++;
  }
  void path;
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} other-platform optional entries`);
