/**
 * `hf://<org>/<name>[@<revision>]` model sources: a Hugging Face Hub model repository, read from the Hugging
 * Face cache directory (the layout huggingface_hub and transformers share: `models--<org>--<name>/` with
 * `refs/<revision>` holding a commit, `snapshots/<commit>/<file>` linking to `blobs/<digest>`) and
 * downloaded into it through @huggingface/hub when the Hub is reachable. What is resolved is a checkpoint
 * directory (config.json, safetensors weights, tokenizer files) for the engine's Hugging Face import.
 *
 * The cache is HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; the Hub is HF_ENDPOINT
 * (default https://huggingface.co); HF_TOKEN authenticates gated and private repositories; HF_HUB_OFFLINE=1
 * reads the cache only. Online, the revision is asked of the Hub (as transformers does) and only files
 * missing from that commit's snapshot are downloaded; when the Hub cannot be reached a cached snapshot of
 * the revision is used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalidArgument, RlhfError } from '../errors.js';

export interface HfModelRef {
  /** `org/name`. */
  repo: string;
  /** A branch, tag or 40-hex commit; `main` when the URI names none. */
  revision: string;
}

export interface HfSourceOptions {
  /** The cache directory (default from the environment, see above). */
  cacheDir?: string;
  /** The Hub's base URL (default HF_ENDPOINT or https://huggingface.co). */
  hubUrl?: string;
  /** Read the cache only (default HF_HUB_OFFLINE). */
  offline?: boolean;
  accessToken?: string;
  /** Told after each downloaded file: files done of those missing from the cache. */
  onFile?: (doneFiles: number, totalFiles: number, file: string) => void;
  env?: NodeJS.ProcessEnv;
}

const uriFix =
  'write hf://<org>/<name> or hf://<org>/<name>@<revision>, e.g. hf://HuggingFaceTB/SmolLM2-135M@main';
const namePart = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const commitPattern = /^[0-9a-f]{40}$/;

export const isHfUri = (uri: string): boolean => uri.startsWith('hf://');

export function parseHfUri(uri: string, field = 'uri'): HfModelRef {
  if (!isHfUri(uri)) throw invalidArgument(field, `${uri} is not an hf:// URI`, uriFix);
  const rest = uri.slice('hf://'.length);
  const at = rest.indexOf('@');
  const repo = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => namePart.test(p) && !p.includes('..')))
    throw invalidArgument(field, `bad repository "${repo}" in ${uri}`, uriFix);
  if (revision === '' || revision.includes('..') || !/^[A-Za-z0-9._/-]+$/.test(revision))
    throw invalidArgument(field, `bad revision "${revision}" in ${uri}`, uriFix);
  return { repo, revision };
}

/**
 * Whether the environment gives a service process a Hugging Face cache (HF_HOME or HF_HUB_CACHE), which
 * it then fills from hf:// URIs. The chart sets HF_HOME from `huggingface.cache`; local runs use the default.
 */
export function hfConfiguredInEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return [env.HF_HOME, env.HF_HUB_CACHE].some((v) => v !== undefined && v !== '');
}

/**
 * The environment that gives a local run's worker processes the user's own Hugging Face cache: nothing
 * when HF_HOME or HF_HUB_CACHE is set already, else HF_HOME at its default, ~/.cache/huggingface.
 */
export function localHfEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return hfConfiguredInEnv(env) ? {} : { HF_HOME: join(homedir(), '.cache', 'huggingface') };
}

export function hfCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(homedir(), '.cache', 'huggingface', 'hub');
}

/** The files of a repository the engine's import reads; everything else (PyTorch .bin, ONNX, ...) is skipped. */
export function isCheckpointFile(name: string): boolean {
  return (
    [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'model.safetensors',
      'model.safetensors.index.json',
    ].includes(name) || /^model-\d+-of-\d+\.safetensors$/.test(name)
  );
}

const repoFolder = (cacheDir: string, repo: string): string =>
  join(cacheDir, `models--${repo.split('/').join('--')}`);

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

/** The cached commit of `revision` (itself when it is a commit), or null. */
async function cachedCommit(folder: string, revision: string): Promise<string | null> {
  if (commitPattern.test(revision)) return revision;
  try {
    const commit = (await readFile(join(folder, 'refs', revision), 'utf8')).trim();
    return commitPattern.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

/** Whether a snapshot holds a loadable checkpoint: config.json and its weights. */
async function completeSnapshot(dir: string): Promise<boolean> {
  if (!(await exists(join(dir, 'config.json')))) return false;
  if (await exists(join(dir, 'model.safetensors'))) return true;
  try {
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map?: Record<string, string>;
    };
    const shards = new Set(Object.values(index.weight_map ?? {}));
    for (const shard of shards) if (!(await exists(join(dir, shard)))) return false;
    return shards.size > 0;
  } catch {
    return false;
  }
}

/** An error of @huggingface/hub's fetches: its HTTP status where it has one. */
const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number }).statusCode;

function hubFailure(uri: string, field: string, e: unknown): RlhfError {
  const status = statusOf(e);
  if (status === 401 || status === 403)
    return new RlhfError('PERMISSION_DENIED', `${uri}: the Hub refused access (HTTP ${status})`, {
      field,
      fix: 'set HF_TOKEN to a token with access to the repository (gated models need their licence accepted)',
      cause: e,
    });
  if (status === 404)
    return new RlhfError('NOT_FOUND', `${uri}: no such repository or revision on the Hub`, {
      field,
      fix: 'check the organisation, name and @revision',
      cause: e,
    });
  return new RlhfError('UNAVAILABLE', `${uri}: the Hub cannot be reached (${(e as Error).message})`, {
    field,
    fix: 'check HF_ENDPOINT and the network, or put the model in the Hugging Face cache (HF_HOME) and set HF_HUB_OFFLINE=1',
    cause: e,
  });
}

/** Streams `body` to `blobs/<sha256>` (written under a temporary name, renamed when whole). */
async function storeBlob(folder: string, body: ReadableStream<Uint8Array>, size: number): Promise<string> {
  await mkdir(join(folder, 'blobs'), { recursive: true });
  const tmp = join(folder, 'blobs', `.incoming-${process.pid}-${randomBytes(4).toString('hex')}`);
  const hash = createHash('sha256');
  let received = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      received += chunk.byteLength;
      done(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(body as import('node:stream/web').ReadableStream),
      hashing,
      createWriteStream(tmp),
    );
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // A connection cut short ends the stream without an error; a short file must never enter the cache.
  if (received !== size) {
    await rm(tmp, { force: true });
    throw new Error(`received ${received} of ${size} bytes`);
  }
  const digest = hash.digest('hex');
  await rename(tmp, join(folder, 'blobs', digest));
  return digest;
}

/** Links `snapshots/<commit>/<file>` to its blob, relatively (as huggingface_hub does). */
async function linkSnapshotFile(folder: string, commit: string, file: string, digest: string): Promise<void> {
  const link = join(folder, 'snapshots', commit, file);
  await mkdir(dirname(link), { recursive: true });
  if (await lstat(link).catch(() => null)) await rm(link, { force: true });
  await symlink(relative(dirname(link), join(folder, 'blobs', digest)), link);
}

/**
 * The local checkpoint directory of `uri` (a snapshot in the cache), downloading what is missing when
 * online. NOT_FOUND naming `field` when the model is neither cached nor reachable.
 */
export async function resolveHfModel(
  uri: string,
  field: string,
  options: HfSourceOptions = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const { repo, revision } = parseHfUri(uri, field);
  const cacheDir = options.cacheDir ?? hfCacheDir(env);
  const folder = repoFolder(cacheDir, repo);
  const offline = options.offline ?? ['1', 'true', 'yes'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
  const cached = async (): Promise<string | null> => {
    const commit = await cachedCommit(folder, revision);
    const dir = commit && join(folder, 'snapshots', commit);
    return dir && (await completeSnapshot(dir)) ? dir : null;
  };
  const notCached = (why: string): RlhfError =>
    new RlhfError('NOT_FOUND', `${uri} is not in the Hugging Face cache ${cacheDir} (${why})`, {
      field,
      fix: 'download it once online (unset HF_HUB_OFFLINE), or point HF_HOME / HF_HUB_CACHE at a cache that holds it',
    });
  if (offline) {
    const dir = await cached();
    if (!dir) throw notCached('HF_HUB_OFFLINE is set');
    return dir;
  }

  const hub = await import('@huggingface/hub');
  const hubUrl = options.hubUrl ?? env.HF_ENDPOINT ?? undefined;
  const token = options.accessToken ?? env.HF_TOKEN ?? undefined;
  const common = {
    ...(hubUrl ? { hubUrl: hubUrl.replace(/\/+$/, '') } : {}),
    ...(token ? { accessToken: token as `hf_${string}` } : {}),
  };
  let info: { sha?: string; filePaths?: string[] };
  try {
    info = await hub.modelInfo({ name: repo, revision, additionalFields: ['sha', 'filePaths'], ...common });
  } catch (e) {
    const status = statusOf(e);
    // Unreachable (no status, or a server error): a cached snapshot of the revision is still good.
    if (status === undefined || status >= 500) {
      const dir = await cached();
      if (dir) return dir;
    }
    throw hubFailure(uri, field, e);
  }
  const commit = info.sha;
  if (!commit || !commitPattern.test(commit))
    throw new RlhfError('UNAVAILABLE', `${uri}: the Hub answered without a commit for ${revision}`, {
      field,
      fix: 'check HF_ENDPOINT points at a Hugging Face Hub',
    });
  const files = (info.filePaths ?? []).filter(isCheckpointFile);
  if (!files.includes('config.json') || !files.some((f) => f.endsWith('.safetensors')))
    throw new RlhfError('FAILED_PRECONDITION', `${uri} has no config.json with safetensors weights`, {
      field,
      fix: 'use a repository saved by transformers with safe_serialization (model.safetensors); convert .bin weights first',
    });
  if (revision !== commit) {
    await mkdir(join(folder, 'refs', dirname(revision)), { recursive: true });
    await writeFile(join(folder, 'refs', revision), commit);
  }
  const snapshot = join(folder, 'snapshots', commit);
  const missing: string[] = [];
  for (const f of files) if (!(await exists(join(snapshot, f)))) missing.push(f);
  for (const [i, file] of missing.entries()) {
    let blob: Blob | null;
    try {
      blob = await hub.downloadFile({ repo, path: file, revision: commit, ...common });
    } catch (e) {
      throw hubFailure(`${uri} (${file})`, field, e);
    }
    if (!blob)
      throw new RlhfError('NOT_FOUND', `${uri}: the Hub lists ${file} but does not serve it`, {
        field,
        fix: 'try again; if it persists the repository is inconsistent',
      });
    let digest: string;
    try {
      digest = await storeBlob(folder, blob.stream(), blob.size);
    } catch (e) {
      throw hubFailure(`${uri} (${file})`, field, e);
    }
    await linkSnapshotFile(folder, commit, file, digest);
    options.onFile?.(i + 1, missing.length, file);
  }
  if (!(await completeSnapshot(snapshot))) throw notCached('the download did not complete');
  return snapshot;
}
