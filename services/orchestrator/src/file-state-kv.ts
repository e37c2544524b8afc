/**
 * The run's state records without NATS: the part of a JetStream KV bucket that RunState uses (get, put,
 * keys, purge), one file per key in a directory. Each write replaces its file atomically, so a run killed
 * at any point leaves every record either as it was or as written, and the next run resumes from them as
 * `rlhf run` resumes from KV.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KV } from '@nats-io/kv';
import { writeFileAtomic } from '@rlhf/platform';
import type { RunRef } from '@rlhf/workflow';
import { RunState } from './run-state.js';

/** What a KV entry holds for RunState: its operation and value. */
export interface FileKvEntry {
  operation: 'PUT';
  value: Uint8Array;
}

const fileOf = (key: string) => `${encodeURIComponent(key)}.json`;

export class FileStateKv {
  constructor(readonly dir: string) {}

  async get(key: string): Promise<FileKvEntry | null> {
    try {
      return { operation: 'PUT', value: new Uint8Array(await readFile(join(this.dir, fileOf(key)))) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    await writeFileAtomic(join(this.dir, fileOf(key)), value);
    return 0;
  }

  /** Keys matching a NATS subject filter: exact, or `prefix.>` for every key below the prefix. */
  async keys(filter = '>'): Promise<AsyncIterable<string>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
      else throw err;
    }
    const keys = names
      .filter((n) => n.endsWith('.json') && !n.includes('.tmp-'))
      .map((n) => decodeURIComponent(n.slice(0, -'.json'.length)));
    const wanted = filter.endsWith('>')
      ? keys.filter((k) => k.startsWith(filter.slice(0, -1)) && k.length > filter.length - 1)
      : keys.filter((k) => k === filter);
    return (async function* () {
      yield* wanted.sort();
    })();
  }

  async purge(key: string): Promise<void> {
    await rm(join(this.dir, fileOf(key)), { force: true });
  }
}

/** A RunState over records kept in `dir`. */
export function fileRunState(dir: string, run: RunRef): RunState {
  // RunState reads and writes through get, put, keys and purge only, which FileStateKv has.
  return new RunState(new FileStateKv(dir) as unknown as KV, run);
}
