/** The fake kubelet's downward API resourceFieldRef and Kubernetes quantities. */
import assert from 'node:assert/strict';
import { availableParallelism, totalmem } from 'node:os';
import { test } from 'node:test';
import { ContainerConfigError } from './container-config-error.js';
import {
  type ContainerResources,
  parseQuantity,
  type ResourceFieldSelector,
  resourceFieldValue,
} from './resource-field-ref.js';

const q = (text: string | number) => {
  const { num, den } = parseQuantity(text, 'x');
  return [num, den];
};

test('quantities parse exactly: decimal and binary suffixes, decimals, exponents, plain numbers', () => {
  assert.deepEqual(q('500m'), [500n, 1000n]);
  assert.deepEqual(q('2'), [2n, 1n]);
  assert.deepEqual(q(2), [2n, 1n]);
  assert.deepEqual(q('0.25'), [25n, 100n]);
  assert.deepEqual(q('.5'), [5n, 10n]);
  assert.deepEqual(q('1.'), [1n, 1n]);
  assert.deepEqual(q('1k'), [1000n, 1n]);
  assert.deepEqual(q('1Ki'), [1024n, 1n]);
  assert.deepEqual(q('128974848'), [128974848n, 1n]);
  assert.deepEqual(q('129M'), [129_000_000n, 1n]);
  assert.deepEqual(q('123Mi'), [123n * 2n ** 20n, 1n]);
  assert.deepEqual(q('1.5Gi'), [15n * 2n ** 30n, 10n]);
  assert.deepEqual(q('2G'), [2_000_000_000n, 1n]);
  assert.deepEqual(q('1e3'), [1000n, 1n]);
  assert.deepEqual(q('25E-2'), [25n, 100n]);
  assert.deepEqual(q('1E'), [10n ** 18n, 1n], 'a bare E is exa, not an exponent');
  assert.deepEqual(q('+100n'), [100n, 10n ** 9n]);
  for (const bad of ['', '1K', '1Gb', 'abc', '1.5.5', 'm', '1 Gi', '1e']) {
    assert.throws(
      () => parseQuantity(bad, 'resources.limits.cpu'),
      (e: unknown) =>
        e instanceof ContainerConfigError &&
        e.message === `resources.limits.cpu: "${bad}" is not a Kubernetes quantity`,
      bad,
    );
  }
});

const node = { cpu: 6, memory: 8 * 2 ** 30 };
const pod = (containers: { name: string; resources?: ContainerResources }[]) => ({
  spec: { containers },
});
function value(resources: ContainerResources | undefined, ref: ResourceFieldSelector): string {
  const c = { name: 'main', ...(resources ? { resources } : {}) };
  return resourceFieldValue(pod([c]), c, 'VAR', ref, node);
}

test('cpu: millicores divided by the divisor, rounded up (at least 1 when nonzero)', () => {
  const cpu = (limit: string, divisor?: string) =>
    value({ limits: { cpu: limit } }, { resource: 'limits.cpu', ...(divisor ? { divisor } : {}) });
  assert.equal(cpu('500m', '1'), '1');
  assert.equal(cpu('2500m', '1'), '3');
  assert.equal(cpu('2'), '2', 'no divisor is 1');
  assert.equal(cpu('1n', '1'), '1');
  assert.equal(cpu('1.1', '1m'), '1100', 'exact, where 1.1 * 1000 in floating point rounds up to 1101');
  assert.equal(cpu('250m', '1m'), '250');
  assert.equal(cpu('1500m', '1000m'), '2', '1000m is the divisor 1');
  assert.equal(cpu('0', '1'), '0');
});

test('memory: bytes divided by the divisor, rounded up', () => {
  const mem = (limit: string, divisor?: string) =>
    value({ limits: { memory: limit } }, { resource: 'limits.memory', ...(divisor ? { divisor } : {}) });
  assert.equal(mem('1.5Gi', '1Mi'), '1536');
  assert.equal(mem('1000M', '1Mi'), '954');
  assert.equal(mem('1Gi'), '1073741824');
  assert.equal(mem('1G', '1k'), '1000000');
  assert.equal(mem('0.5', '1'), '1', 'Value() rounds a fraction of a byte up');
});

test("a missing limit is the node's allocatable; a missing request is the limit, else 0", () => {
  assert.equal(value(undefined, { resource: 'limits.cpu', divisor: '1' }), '6');
  assert.equal(value({ requests: { cpu: '1' } }, { resource: 'limits.cpu', divisor: '1m' }), '6000');
  assert.equal(value({}, { resource: 'limits.memory', divisor: '1Gi' }), '8');
  const bare = { name: 'main' };
  assert.equal(
    resourceFieldValue(pod([bare]), bare, 'V', { resource: 'limits.cpu', divisor: '1' }),
    String(availableParallelism()),
    'by default the allocatable CPUs are the cores Node sees',
  );
  assert.equal(resourceFieldValue(pod([bare]), bare, 'V', { resource: 'limits.memory' }), String(totalmem()));
  assert.equal(value({ requests: { cpu: '250m' } }, { resource: 'requests.cpu', divisor: '1m' }), '250');
  assert.equal(value({ limits: { cpu: '3' } }, { resource: 'requests.cpu' }), '3');
  assert.equal(value({ limits: { memory: '1Gi' } }, { resource: 'requests.memory', divisor: '1Mi' }), '1024');
  assert.equal(value(undefined, { resource: 'requests.cpu' }), '0');
  assert.equal(value(undefined, { resource: 'requests.memory' }), '0');
});

test('containerName picks another container of the pod; without it, the current one', () => {
  const main = { name: 'main', resources: { limits: { cpu: '1' } } };
  const side = { name: 'side', resources: { limits: { cpu: '4' } } };
  const p = pod([main, side]);
  assert.equal(resourceFieldValue(p, main, 'V', { resource: 'limits.cpu' }, node), '1');
  assert.equal(
    resourceFieldValue(p, main, 'V', { containerName: 'side', resource: 'limits.cpu' }, node),
    '4',
  );
  assert.equal(
    resourceFieldValue(p, main, 'V', { containerName: 'main', resource: 'limits.cpu' }, node),
    '1',
  );
});

test('errors name the env var and the field', () => {
  const fails = (ref: ResourceFieldSelector, message: RegExp, resources?: ContainerResources) =>
    assert.throws(
      () => {
        const c = { name: 'main', ...(resources ? { resources } : {}) };
        resourceFieldValue(pod([c]), c, 'RLHF_ORT_THREADS', ref, node);
      },
      (e: unknown) => e instanceof ContainerConfigError && message.test(e.message),
      message.source,
    );
  fails(
    { resource: 'limits.gpu' },
    /^env RLHF_ORT_THREADS: valueFrom\.resourceFieldRef\.resource: unsupported container resource "limits\.gpu"/,
  );
  fails({ resource: 'cpu' }, /valueFrom\.resourceFieldRef\.resource: .*"cpu"/);
  fails(
    { containerName: 'nope', resource: 'limits.cpu' },
    /valueFrom\.resourceFieldRef\.containerName: container "nope" not found/,
  );
  fails(
    { resource: 'limits.cpu', divisor: '2' },
    /valueFrom\.resourceFieldRef\.divisor: "2" is not a cpu divisor/,
  );
  fails({ resource: 'limits.cpu', divisor: '1Mi' }, /\.divisor: "1Mi" is not a cpu divisor/);
  fails({ resource: 'limits.memory', divisor: '1m' }, /\.divisor: "1m" is not a memory divisor/);
  fails({ resource: 'limits.cpu', divisor: 'one' }, /\.divisor: "one" is not a Kubernetes quantity/);
  fails(
    { resource: 'limits.cpu' },
    /^container "main" resources\.limits\.cpu: "half" is not a Kubernetes quantity$/,
    { limits: { cpu: 'half' } },
  );
});
