/**
 * `s3://<bucket>/<key>` artifacts in an S3-protocol object store (AWS S3, MinIO, Ceph RGW, ...). One
 * PutObject is atomic for readers (an object appears whole or not at all), so a data file needs nothing
 * more; a model directory is many objects and becomes visible when its manifest.json is written last
 * (publishModelDir in @rlhf/service-kit), as with nats-obj://. Each object the platform writes carries its
 * SHA-256 in the `sha256` user metadata, checked on every read; objects written by other tools are digested
 * when read.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { invalidArgument, RlhfError } from '../errors.js';
import { fileDigest, streamToFileAtomic } from './file-stream.js';
import type { AccessMode } from './sandbox.js';
import {
  type ArtifactInfo,
  type ArtifactStore,
  damaged,
  notFound,
  sameDigest,
  sha256Digest,
} from './store.js';
import { type ArtifactLocation, formatArtifactUri, parseArtifactUri } from './uri.js';

export interface S3Config {
  /** A custom endpoint (MinIO, a local gateway); absent: AWS's own endpoint for the region. */
  endpoint?: string;
  region: string;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`), which most non-AWS servers need. */
  forcePathStyle: boolean;
  /** Absent: the AWS SDK's default chain (AWS_ACCESS_KEY_ID/..., a profile, web identity, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const pathStyleVar = 'RLHF_S3_PATH_STYLE';

/**
 * The S3 settings a process takes from its environment: the endpoint from AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL, the region from AWS_REGION or AWS_DEFAULT_REGION (us-east-1 when neither is set),
 * path-style from RLHF_S3_PATH_STYLE (default: on exactly when a custom endpoint is set). Credentials are
 * left to the SDK's default chain, which reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN first.
 */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  const raw = env[pathStyleVar]?.trim().toLowerCase();
  if (raw !== undefined && raw !== '' && !['true', 'false', '1', '0'].includes(raw))
    throw invalidArgument(
      pathStyleVar,
      `"${env[pathStyleVar]}" is not a boolean`,
      `set ${pathStyleVar}=true or false`,
    );
  const forcePathStyle =
    raw === undefined || raw === '' ? endpoint !== undefined : raw === 'true' || raw === '1';
  return { ...(endpoint ? { endpoint } : {}), region, forcePathStyle };
}

/**
 * Whether the environment configures S3 for a service process (which then takes s3:// URIs): a region or
 * an endpoint is set. The chart sets them from `artifacts.s3`; IRSA's web identity sets AWS_REGION.
 */
export function s3ConfiguredInEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return [env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL, env.AWS_REGION, env.AWS_DEFAULT_REGION].some(
    (v) => v !== undefined && v !== '',
  );
}

/** The largest object one PutObject may write (S3's own limit; larger ones need a multipart upload). */
export const S3_SINGLE_PUT_LIMIT = 5 * 1024 ** 3;

function location(uri: string): { bucket: string; key: string } {
  const loc = parseArtifactUri(uri);
  if (loc.scheme !== 's3') throw new Error(`s3 store given ${uri}`);
  return loc;
}

const isMissing = (e: unknown): boolean => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404;
};

/** An SDK failure as an RlhfError that names the URI and what to check. */
function s3Failure(uri: string, e: unknown): RlhfError {
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  if (err.name === 'NoSuchBucket')
    return new RlhfError('NOT_FOUND', `${uri}: the bucket does not exist`, {
      field: 'uri',
      fix: 'create the bucket first (e.g. `aws s3 mb s3://<bucket>`), or check the bucket name',
      cause: e,
    });
  if (status === 403 || err.name === 'AccessDenied' || err.name === 'InvalidAccessKeyId')
    return new RlhfError('PERMISSION_DENIED', `${uri}: access denied (${err.name ?? status})`, {
      field: 'uri',
      fix: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a role) with access to the bucket',
      cause: e,
    });
  return new RlhfError('UNAVAILABLE', `${uri}: S3 request failed: ${err.name ?? ''} ${err.message ?? e}`, {
    field: 'uri',
    fix: 'check AWS_ENDPOINT_URL_S3, AWS_REGION and RLHF_S3_PATH_STYLE, and that the endpoint is reachable',
    cause: e,
  });
}

export class S3ArtifactStore implements ArtifactStore {
  private readonly client: S3Client;

  constructor(config: S3Config = s3ConfigFromEnv()) {
    const options: S3ClientConfig = {
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
    };
    // Servers other than AWS often lack the SDK's default flexible (CRC32, aws-chunked) checksums; the
    // store checks its own SHA-256 instead, so checksums are sent only where an operation requires them.
    if (config.endpoint) {
      options.requestChecksumCalculation = 'WHEN_REQUIRED';
      options.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    // A failed request with a streamed body (putFile) makes the SDK print a warning to the console unless
    // a logger is set; the failure reaches the user as one RlhfError naming the URI, so the SDK stays quiet
    // (its default logger logs nothing either).
    const quiet = () => {};
    options.logger = { trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };
    // The SDK warns on Node 20 that its releases from 2027 on will need Node 22. The lockfile pins the
    // release this build uses, so the notice says nothing to the user, and it would break the one-line
    // error output of the CLI; a user who sets the variable keeps their own choice.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client(options);
  }

  async resolve(uri: string, field: string, _mode: AccessMode): Promise<ArtifactLocation> {
    const loc = parseArtifactUri(uri, field);
    if (loc.scheme !== 's3') throw new Error(`s3 store given ${uri}`);
    return loc;
  }

  async put(uri: string, data: Uint8Array): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    const digest = sha256Digest(data);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, Metadata: { sha256: digest } }),
      );
    } catch (e) {
      throw s3Failure(uri, e);
    }
    return { uri, size: data.byteLength, digest };
  }

  async putFile(uri: string, path: string): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    const { size } = await stat(path);
    if (size > S3_SINGLE_PUT_LIMIT)
      throw invalidArgument(
        'uri',
        `${path} is ${size} bytes, above the ${S3_SINGLE_PUT_LIMIT} bytes (5 GiB) one S3 PutObject may write`,
        'split the file (e.g. ONNX external data in several files), or push the model to nats-obj:// or file://',
      );
    // The digest travels in the request's headers, ahead of the body: one pass to digest, one to send.
    const { digest } = await fileDigest(path);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: createReadStream(path),
          ContentLength: size,
          Metadata: { sha256: digest },
        }),
      );
    } catch (e) {
      throw s3Failure(uri, e);
    }
    return { uri, size, digest };
  }

  async getFile(uri: string, path: string): Promise<ArtifactInfo> {
    const { bucket, key } = location(uri);
    let body: Readable;
    let stored: string | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!out.Body) throw notFound(uri);
      body = out.Body as Readable;
      stored = out.Metadata?.sha256;
    } catch (e) {
      if (e instanceof RlhfError) throw e;
      if (isMissing(e) && (e as { name?: string }).name !== 'NoSuchBucket') throw notFound(uri);
      throw s3Failure(uri, e);
    }
    try {
      const got = await streamToFileAtomic(path, body, ({ digest }) => {
        if (stored !== undefined && !sameDigest(digest, stored)) throw damaged(uri, digest, stored);
      });
      return { uri, ...got };
    } catch (e) {
      // A local write failure (a full disk) is the caller's to see as it is, not an S3 failure.
      if (e instanceof RlhfError || (e as NodeJS.ErrnoException).syscall) throw e;
      throw s3Failure(uri, e);
    }
  }

  async get(uri: string): Promise<Uint8Array> {
    const { bucket, key } = location(uri);
    let data: Uint8Array;
    let stored: string | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!out.Body) throw notFound(uri);
      data = await out.Body.transformToByteArray();
      stored = out.Metadata?.sha256;
    } catch (e) {
      if (e instanceof RlhfError) throw e;
      if (isMissing(e) && (e as { name?: string }).name !== 'NoSuchBucket') throw notFound(uri);
      throw s3Failure(uri, e);
    }
    // A truncated or damaged transfer must never be handed on as a good artifact.
    if (stored !== undefined && !sameDigest(sha256Digest(data), stored))
      throw new RlhfError('INTERNAL', `artifact ${uri} failed its digest check`, {
        field: 'uri',
        fix: 'write the artifact again; the stored copy is damaged',
      });
    return data;
  }

  async info(uri: string): Promise<ArtifactInfo | null> {
    const { bucket, key } = location(uri);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const digest = head.Metadata?.sha256 ?? sha256Digest(await this.get(uri));
      return { uri, size: Number(head.ContentLength ?? 0), digest };
    } catch (e) {
      if (isMissing(e)) return null;
      if (e instanceof RlhfError) throw e;
      throw s3Failure(uri, e);
    }
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = location(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (e) {
      if (!isMissing(e)) throw s3Failure(uri, e);
    }
  }

  async list(prefixUri: string): Promise<string[]> {
    const { bucket, key } = location(prefixUri);
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (e) {
      throw s3Failure(prefixUri, e);
    }
    return keys.sort().map((k) => formatArtifactUri({ scheme: 's3', bucket, key: k }));
  }

  close(): void {
    this.client.destroy();
  }
}
