/**
 * A real S3-protocol server for tests: s3rver on loopback, storing under a temporary directory, with the
 * given buckets created. Clients reach it path-style at `endpoint` with s3rver's fixed credentials.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3Config } from '../../src/artifacts/s3-store.js';

export interface TestS3Server {
  endpoint: string;
  /** A client config for this server (path-style, its credentials). */
  config: S3Config;
  /** The environment a process needs to reach this server through s3ConfigFromEnv. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3Server(buckets: string[]): Promise<TestS3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'rlhf-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver's fixed key pair; it checks signatures made with it.
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  return {
    endpoint,
    config: { endpoint, region: 'us-east-1', forcePathStyle: true, credentials },
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      RLHF_S3_PATH_STYLE: 'true',
    },
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
