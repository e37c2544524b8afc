/**
 * Each of the four services started in-process on loopback: a real gRPC health round trip, server
 * reflection, and the drain on shutdown (health turns NOT_SERVING, then the port closes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHealth, listServices, serveService } from '@rlhf/platform';
import { protoFiles, protoRoot } from '@rlhf/proto';
import { loadAllServices, serviceEntries } from '../../services/cli/src/service-registry.js';

const serviceModules = await loadAllServices();

test('rlhf serve lists each service by the name and summary the service itself has', () => {
  assert.deepEqual(
    serviceEntries.map((e) => [e.name, e.summary]),
    serviceModules.map((m) => [m.name, m.summary]),
  );
});

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
      const services = await listServices(address);
      assert.ok(services.includes('grpc.health.v1.Health'), services.join(','));
      assert.ok(
        services.includes(module.grpcServiceName),
        `${module.grpcServiceName} in ${services.join(',')}`,
      );
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
