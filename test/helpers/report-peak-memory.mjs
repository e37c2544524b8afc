// Preloaded into a child process (NODE_OPTIONS=--import <this file>): at exit, writes the process's peak
// resident memory (VmHWM of /proc/self/status, in kB) to stderr as `peak-rss-kb <n>`, for the tests that
// report how much memory a command takes.
import { readFileSync } from 'node:fs';

process.on('exit', () => {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m) process.stderr.write(`\npeak-rss-kb ${m[1]}\n`);
});
