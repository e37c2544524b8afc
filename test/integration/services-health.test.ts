/**
 * Each of the four services started in-process on loopback: a real gRPC health round trip, server
 * reflection and health knowing exactly the services the process serves, every rpc answering undecodable
 * bytes INVALID_ARGUMENT, and the drain on shutdown (health
 * turns NOT_SERVING, then the port closes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { checkHealth, listServices, serveService } from '@rlhf/platform';
import * as proto from '@rlhf/proto';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { loadAllServices, serviceEntries } from '../../services/cli/src/service-registry.js';

const serviceModules = await loadAllServices();

test('rlhf serve lists each service by the name and summary the service itself has', () => {
  assert.deepEqual(
    serviceEntries.map((e) => [e.name, e.summary]),
    serviceModules.map((m) => [m.name, m.summary]),
  );
});

/** Every rpc of the service answers bytes no decoder can read INVALID_ARGUMENT, and keeps serving. */
async function assertUndecodableRefused(address: string, serviceName: string): Promise<void> {
  const short = serviceName.split('.').at(-1) as string;
  const definition = (proto as unknown as Record<string, grpc.ServiceDefinition>)[`${short}Service`];
  assert.ok(definition, `no generated definition for ${serviceName}`);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  // Field 1 with wire type 7, which does not exist.
  const garbage = Buffer.from([0x0f, 0x01]);
  const id = (b: Buffer) => b;
  try {
    for (const method of Object.values(definition)) {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        if (method.requestStream) throw new Error(`${method.path}: client streams are not covered here`);
        if (method.responseStream) {
          const call = client.makeServerStreamRequest(method.path, id, id, garbage);
          call.on('error', resolve);
          call.on('end', () => resolve(null));
          call.on('data', () => {});
        } else client.makeUnaryRequest(method.path, id, id, garbage, (e) => resolve(e));
      });
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT, `${method.path}: ${err?.code} ${err?.details}`);
      assert.match(err.details, /^request: the request could not be decoded/);
    }
  } finally {
    client.close();
  }
  assert.equal(await checkHealth(address), 'SERVING', 'still serving');
}

/** What each process serves besides health, as reflection must list it: nothing more, nothing less. */
const servedBy: Record<string, string[]> = {
  'dpo-trainer': ['rlhf.v1.TrainingJobsService'],
  'policy-generator': ['rlhf.v1.PolicyGeneratorService'],
  'preference-model': ['rlhf.v1.PreferenceModelService', 'rlhf.v1.TrainingJobsService'],
  'reward-model': ['rlhf.v1.RewardModelService', 'rlhf.v1.TrainingJobsService'],
};

test('every service process has its served list here', () => {
  assert.deepEqual(serviceModules.map((m) => m.name).sort(), Object.keys(servedBy).sort());
});

const allServiceNames = [...new Set(Object.values(servedBy).flat())];

for (const module of serviceModules) {
  test(`${module.name}: health and reflection over loopback`, async () => {
    const running = await serveService(module, {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'warn',
      reflection: { files: protoFiles, includeDirs: [protoRoot] },
    });
    const address = `127.0.0.1:${running.grpcPort}`;
    try {
      assert.ok(running.grpcPort > 0);
      assert.equal(await checkHealth(address), 'SERVING');
      const served = servedBy[module.name] ?? [];
      assert.deepEqual(await listServices(address), ['grpc.health.v1.Health', ...served].sort());
      assert.deepEqual([...module.grpcServiceNames].sort(), served, 'the module names what it binds');
      for (const name of allServiceNames) {
        if (served.includes(name)) assert.equal(await checkHealth(address, name), 'SERVING', name);
        else await assert.rejects(checkHealth(address, name), /NOT_FOUND|unknown service/i, name);
      }
      for (const name of served) await assertUndecodableRefused(address, name);
    } finally {
      await running.stop();
    }
    await assert.rejects(checkHealth(address, '', { deadlineMs: 1000 }));
  });
}

test('drain: health answers NOT_SERVING while a stop is under way', async () => {
  const module = serviceModules[0];
  assert.ok(module);
  const running = await serveService(module, { host: '127.0.0.1', port: 0, logLevel: 'warn' });
  const address = `127.0.0.1:${running.grpcPort}`;
  const health = running.grpc.health;
  health.setStatus('', 'NOT_SERVING');
  assert.equal(await checkHealth(address), 'NOT_SERVING');
  await running.stop();
});
