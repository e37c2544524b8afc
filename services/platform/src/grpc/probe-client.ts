/**
 * Client side of the two introspection services every server carries: `grpc.health.v1.Health/Check` and
 * server reflection's `ListServices`. Used by `rlhf health`, by readiness checks and by the tests.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

const require = createRequire(import.meta.url);

type UnaryCallback<T> = (err: grpc.ServiceError | null, value?: T) => void;
interface HealthClient extends grpc.Client {
  Check(req: { service: string }, options: grpc.CallOptions, cb: UnaryCallback<{ status: string }>): void;
}
interface ReflectionResponse {
  list_services_response?: { service: Array<{ name: string }> };
  error_response?: { error_message: string };
}
interface ReflectionClient extends grpc.Client {
  ServerReflectionInfo(
    options: grpc.CallOptions,
  ): grpc.ClientDuplexStream<Record<string, unknown>, ReflectionResponse>;
}

function load(file: string, includeDirs: string[]): grpc.GrpcObject {
  return grpc.loadPackageDefinition(
    loadSync(file, { includeDirs, keepCase: true, enums: String, defaults: true }),
  );
}

function pick(obj: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let cur: unknown = obj;
  for (const part of path.split('.')) cur = (cur as Record<string, unknown>)[part];
  return cur as grpc.ServiceClientConstructor;
}

export interface ProbeOptions {
  deadlineMs?: number;
  credentials?: grpc.ChannelCredentials;
  /** Channel options, e.g. the bearer-token interceptor and TLS server name of client-credentials.ts. */
  clientOptions?: grpc.ClientOptions;
}

/** The serving status (`SERVING`, `NOT_SERVING`, ...) of a service ('' = the whole server). */
export async function checkHealth(
  address: string,
  service = '',
  options: ProbeOptions = {},
): Promise<string> {
  const Ctor = pick(load(healthProtoPath, []), 'grpc.health.v1.Health');
  const client = new Ctor(
    address,
    options.credentials ?? grpc.credentials.createInsecure(),
    options.clientOptions,
  ) as unknown as HealthClient;
  try {
    return await new Promise<string>((resolve, reject) => {
      client.Check({ service }, { deadline: Date.now() + (options.deadlineMs ?? 5000) }, (err, res) =>
        err ? reject(err) : resolve(res?.status ?? 'UNKNOWN'),
      );
    });
  } finally {
    client.close();
  }
}

/** Service names the server describes through reflection (v1). */
export async function listServices(address: string, options: ProbeOptions = {}): Promise<string[]> {
  const protoDir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const Ctor = pick(
    load(join(protoDir, 'grpc/reflection/v1/reflection.proto'), [protoDir]),
    'grpc.reflection.v1.ServerReflection',
  );
  const client = new Ctor(
    address,
    options.credentials ?? grpc.credentials.createInsecure(),
    options.clientOptions,
  ) as unknown as ReflectionClient;
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo({ deadline: Date.now() + (options.deadlineMs ?? 5000) });
      call.on('data', (res: ReflectionResponse) => {
        if (res.error_response) reject(new Error(res.error_response.error_message));
        else resolve((res.list_services_response?.service ?? []).map((s) => s.name).sort());
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '*' });
    });
  } finally {
    client.close();
  }
}
