/**
 * The artifact sandbox: every URI that arrives from outside a service process (a gRPC field, a StageWork,
 * a run spec) is resolved here against what the process was given — its artifact roots (`--artifact-root`)
 * and whether it has NATS — before anything is read or written. A `file://` URI must lie inside a root
 * lexically, contain no `..`, and its existing part must not resolve (through a symlink) to outside every
 * root; a scheme the process was not configured for is refused. Every refusal is PERMISSION_DENIED naming
 * the field and is decided before the path is touched, so a file, a directory and nothing at all outside
 * the roots are refused alike. A write target that exists must be something the platform made
 * (platform-made.ts). `nats-obj://` and `s3://` keys are checked by parseArtifactUri; `s3://` is taken only
 * by a process configured for S3, `hf://` only by one configured for the Hugging Face Hub and only to read.
 */
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArgument, RlhfError } from '../errors.js';
import { ownerOf } from './platform-made.js';
import { type ArtifactLocation, parseArtifactUri, parseWritableUri } from './uri.js';

/**
 * `write`: a directory (a model) is made at the URI; `write-file`: a data file is, which goes only into a
 * new directory or one the platform made.
 */
export type AccessMode = 'read' | 'write' | 'write-file';

export interface SandboxConfig {
  /** Directories file:// URIs may name (absolute; anything below them). Empty: no file:// at all. */
  roots: readonly string[];
  /** Whether the process has NATS (and so takes nats-obj:// URIs). */
  nats: boolean;
  /** Whether the process is configured for S3 (and so takes s3:// URIs): s3ConfiguredInEnv. */
  s3?: boolean;
  /**
   * Whether the process may read hf:// models (hfConfiguredInEnv): each one is a download from the Hub into
   * the process's Hugging Face cache, so a service takes them only when it was given a cache.
   */
  hf?: boolean;
}

const rootsFix = 'use a URI under one of the artifact roots the service was started with (--artifact-root)';

function denied(field: string, message: string, fix = rootsFix): RlhfError {
  return new RlhfError('PERMISSION_DENIED', message, { field, fix });
}

const inside = (path: string, root: string): boolean =>
  path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);

/** The path part of a file URI or bare path as written, percent-decoded where it decodes. */
function writtenSegments(uri: string): string[] {
  const raw = uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // A stray `%` is left as written; fileURLToPath decides whether the URI is valid.
  }
  return decoded.split(/[/\\]/);
}

/**
 * The real path of `path` as far as it exists, with the part that does not exist yet appended; null when
 * some existing component is a symlink whose target does not exist (it could lead anywhere once made).
 */
async function realPrefix(path: string): Promise<string | null> {
  let head = path;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    }
    // realpath fails on a dangling symlink too: only a name that is really absent may be walked past.
    if (await lstat(head).catch(() => null)) return null;
    const parent = dirname(head);
    if (parent === head) return null;
    tail.unshift(basename(head));
    head = parent;
  }
}

export class ArtifactSandbox {
  /** null: unrestricted (the user's own process). */
  private readonly roots: readonly string[] | null;
  private readonly nats: boolean;
  private readonly s3: boolean;
  private readonly hf: boolean;

  private constructor(roots: readonly string[] | null, nats: boolean, s3: boolean, hf: boolean) {
    this.roots = roots;
    this.nats = nats;
    this.s3 = s3;
    this.hf = hf;
  }

  /**
   * A service's sandbox: file:// only below `roots`, nats-obj:// only with NATS, s3:// only with S3, hf://
   * only with a Hugging Face cache.
   */
  static confined(config: SandboxConfig): ArtifactSandbox {
    for (const r of config.roots)
      if (!isAbsolute(r)) throw invalidArgument('--artifact-root', `${r} is not an absolute path`);
    return new ArtifactSandbox(
      config.roots.map((r) => normalize(resolve(r))),
      config.nats,
      config.s3 === true,
      config.hf === true,
    );
  }

  /**
   * No sandbox: for the user's own process acting on the user's own paths (the CLI's local commands,
   * tests). Never for URIs that arrive over the network or in a run spec.
   */
  static unrestricted(): ArtifactSandbox {
    return new ArtifactSandbox(null, true, true, true);
  }

  get confinedRoots(): readonly string[] | null {
    return this.roots;
  }

  /**
   * Where `uri` (found in the request's `field`) points, once it is allowed: PERMISSION_DENIED naming the
   * field when it is outside the roots, holds `..`, leads out through a symlink, or uses a scheme this
   * process does not take; for a write, ALREADY_EXISTS when something the platform did not make is there
   * (and for `write-file`, PERMISSION_DENIED when its directory exists and the platform did not make it).
   */
  async resolve(uri: string, field: string, mode: AccessMode): Promise<ArtifactLocation> {
    const roots = this.roots;
    const isFile = uri.startsWith('file://') || isAbsolute(uri);
    if (roots === null) return mode === 'read' ? parseArtifactUri(uri, field) : parseWritableUri(uri, field);
    if (!isFile) {
      const loc = mode === 'read' ? parseArtifactUri(uri, field) : parseWritableUri(uri, field);
      if (loc.scheme === 'hf') {
        if (!this.hf)
          throw denied(
            field,
            'this service has no Hugging Face cache, so it takes no hf:// URIs',
            'set HF_HOME for the service (chart: huggingface.cache), or push the model with `rlhf model push` and name its nats-obj:// or s3:// URI',
          );
        return loc;
      }
      if (loc.scheme === 's3') {
        if (!this.s3)
          throw denied(
            field,
            'this service is not configured for S3, so it takes no s3:// URIs',
            'set AWS_REGION or AWS_ENDPOINT_URL_S3 (and credentials) for the service (chart: artifacts.s3), or use a nats-obj:// URI',
          );
        return loc;
      }
      if (!this.nats)
        throw denied(
          field,
          `this service has no NATS connection, so it takes no ${loc.scheme}:// URIs`,
          'start the service with --nats-url, or use a file:// URI under its artifact roots',
        );
      return loc;
    }
    if (roots.length === 0)
      throw denied(
        field,
        'this service takes no file:// URIs (it was started without --artifact-root)',
        'start the service with --artifact-root DIR, or use a nats-obj:// URI',
      );
    if (writtenSegments(uri).includes('..'))
      throw denied(field, `${uri} contains ".."`, 'write the path without ".." segments');
    const loc = parseArtifactUri(uri, field);
    if (loc.scheme !== 'file') return loc;
    let path = loc.path;
    if (uri.startsWith('file://')) {
      // parseArtifactUri normalises; keep the check on what fileURLToPath itself yields.
      path = normalize(fileURLToPath(uri));
    }
    if (path.includes('\0') || !roots.some((r) => inside(path, r)))
      throw denied(field, `${uri} is outside the artifact roots of this service`);
    const real = await realPrefix(path);
    const realRoots = await Promise.all(roots.map((r) => realPrefix(r)));
    if (real === null || !realRoots.some((r) => r !== null && inside(real, r)))
      throw denied(field, `${uri} is outside the artifact roots of this service`);
    if (mode !== 'read' && (await ownerOf(path)) === 'foreign')
      throw new RlhfError('ALREADY_EXISTS', `${uri} exists and was not made by the platform`, {
        field,
        fix: 'write to a new URI; an existing path is replaced only when the platform made it',
      });
    if (mode === 'write-file' && (await ownerOf(dirname(path))) === 'foreign')
      throw denied(
        field,
        `${uri} is inside a directory the platform did not make`,
        'write data files under a new directory; the platform writes only into directories it made',
      );
    return { scheme: 'file', path };
  }

  /** `resolve`, returning the URI as given. */
  async check(uri: string, field: string, mode: AccessMode): Promise<string> {
    await this.resolve(uri, field, mode);
    return uri;
  }
}
