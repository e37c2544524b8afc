/**
 * The real control plane of test/helpers/control-plane.ts comes up whole: the API server answers as the
 * pinned release behind client-certificate authentication and RBAC, the controller manager does its work
 * (the service-account controller gives a new namespace its `default` ServiceAccount), and the scheduler
 * does its (a pod that no node can take is marked Unschedulable by default-scheduler).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { after, before, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { eventually } from '../helpers/eventually.js';

let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
});

after(async () => {
  await cp?.stop();
});

test('the API server reports the pinned release and refuses an unauthorized identity', async () => {
  assert.match(cp.version, /^v1\.\d+\.\d+$/);
  const pair = cp.clientCert('nobody');
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(
      `${cp.server}/api/v1/namespaces/default/pods`,
      {
        ca: readFileSync(cp.ca),
        cert: readFileSync(pair.cert),
        key: readFileSync(pair.key),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 403, 'RBAC grants a user with no bindings nothing');
});

test('the controller manager gives a new namespace its default ServiceAccount', async () => {
  const created = await cp.request('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'cp-check' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await eventually('serviceaccount cp-check/default', async () => {
    const res = await cp.request('GET', '/api/v1/namespaces/cp-check/serviceaccounts/default');
    return res.status === 200 ? true : undefined;
  });
});

test('the scheduler marks a pod no node can take Unschedulable', async () => {
  const created = await cp.request('POST', '/api/v1/namespaces/default/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'nowhere' },
    spec: { containers: [{ name: 'c', image: 'rlhf:test' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const condition = await eventually('PodScheduled=False', async () => {
    const res = await cp.request('GET', '/api/v1/namespaces/default/pods/nowhere');
    const conditions =
      (res.body as { status?: { conditions?: { type: string; status: string; reason?: string }[] } }).status
        ?.conditions ?? [];
    return conditions.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  });
  assert.equal(condition.reason, 'Unschedulable');
});
