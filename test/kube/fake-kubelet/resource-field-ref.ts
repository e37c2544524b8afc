/**
 * The downward API's resourceFieldRef, resolved as the kubelet does (pkg/api/v1/resource/helpers.go and
 * kubelet_resources.go): CPU in millicores and memory in bytes, divided by the divisor and rounded up; a
 * missing limit is the node's allocatable. Quantities are exact fractions, so 1.1 CPUs is 1100m, not 1101m.
 */
import { availableParallelism, totalmem } from 'node:os';
import { ContainerConfigError } from './container-config-error.js';

/** A Kubernetes quantity as the exact fraction num / den (den > 0). */
export interface Quantity {
  num: bigint;
  den: bigint;
}

type QuantityText = string | number;

export interface ResourceFieldSelector {
  containerName?: string;
  resource: string;
  divisor?: QuantityText;
}

export interface ContainerResources {
  limits?: Record<string, QuantityText>;
  requests?: Record<string, QuantityText>;
}

/** What limits default to when a container has none: the node's allocatable CPUs and memory (bytes). */
export interface NodeAllocatable {
  cpu: number;
  memory: number;
}

export function nodeAllocatable(): NodeAllocatable {
  return { cpu: availableParallelism(), memory: totalmem() };
}

const scale: Record<string, Quantity> = {
  n: { num: 1n, den: 10n ** 9n },
  u: { num: 1n, den: 10n ** 6n },
  m: { num: 1n, den: 1000n },
  '': { num: 1n, den: 1n },
  k: { num: 10n ** 3n, den: 1n },
  M: { num: 10n ** 6n, den: 1n },
  G: { num: 10n ** 9n, den: 1n },
  T: { num: 10n ** 12n, den: 1n },
  P: { num: 10n ** 15n, den: 1n },
  E: { num: 10n ** 18n, den: 1n },
  Ki: { num: 2n ** 10n, den: 1n },
  Mi: { num: 2n ** 20n, den: 1n },
  Gi: { num: 2n ** 30n, den: 1n },
  Ti: { num: 2n ** 40n, den: 1n },
  Pi: { num: 2n ** 50n, den: 1n },
  Ei: { num: 2n ** 60n, den: 1n },
};

// <sign><digits>[.<digits>] then an exponent (e3, E-2) or a suffix; "1E" is exa, "1E3" is 1000.
const grammar = /^([+-]?)(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d{1,3})|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/;

/** Parses `500m`, `1.5Gi`, `2`, `0.25`, `1e3`, `128974848`...; `field` names the value in the error. */
export function parseQuantity(text: QuantityText, field: string): Quantity {
  const m = grammar.exec(String(text));
  if (!m) throw new ContainerConfigError(`${field}: "${text}" is not a Kubernetes quantity`);
  const [, sign, number, exponent, suffix] = m;
  const [whole, fraction = ''] = number!.split('.');
  let num = BigInt(`${whole || '0'}${fraction}`) * (sign === '-' ? -1n : 1n);
  let den = 10n ** BigInt(fraction.length);
  if (exponent !== undefined) {
    const e = Number(exponent);
    if (e >= 0) num *= 10n ** BigInt(e);
    else den *= 10n ** BigInt(-e);
  } else {
    const s = scale[suffix ?? '']!;
    num *= s.num;
    den *= s.den;
  }
  return { num, den };
}

function equal(a: Quantity, b: Quantity): boolean {
  return a.num * b.den === b.num * a.den;
}

/** ceil(a / b) for b > 0. */
function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

/** Quantity.MilliValue (CPU) or Quantity.Value (memory): rounded up to a whole milli / unit. */
function units(q: Quantity, resource: 'cpu' | 'memory'): bigint {
  return ceilDiv(q.num * (resource === 'cpu' ? 1000n : 1n), q.den);
}

// The divisors the API server accepts (validation.go); anything else never reaches a kubelet.
const divisors: Record<'cpu' | 'memory', string[]> = {
  cpu: ['1m', '1'],
  memory: ['1', '1k', '1M', '1G', '1T', '1P', '1E', '1Ki', '1Mi', '1Gi', '1Ti', '1Pi', '1Ei'],
};

interface PodLike {
  spec?: unknown;
}
interface ContainerLike {
  name: string;
  resources?: ContainerResources;
}

/**
 * The value of `env[envName].valueFrom.resourceFieldRef` in `container` of `pod`: the named container's
 * (the current one without containerName) limits/requests of cpu/memory, ceil(quantity / divisor).
 */
export function resourceFieldValue(
  pod: PodLike,
  container: ContainerLike,
  envName: string,
  ref: ResourceFieldSelector,
  node: NodeAllocatable = nodeAllocatable(),
): string {
  const field = `env ${envName}: valueFrom.resourceFieldRef`;
  const which = /^(limits|requests)\.(cpu|memory)$/.exec(ref.resource);
  if (!which) {
    throw new ContainerConfigError(
      `${field}.resource: unsupported container resource "${ref.resource}" (the fake kubelet knows limits.cpu, limits.memory, requests.cpu, requests.memory)`,
    );
  }
  const kind = which[1] as 'limits' | 'requests';
  const resource = which[2] as 'cpu' | 'memory';
  let target: ContainerLike | undefined = container;
  if (ref.containerName) {
    const spec = (pod.spec ?? {}) as { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
    target = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].find(
      (c) => c.name === ref.containerName,
    );
    if (!target) {
      throw new ContainerConfigError(`${field}.containerName: container "${ref.containerName}" not found`);
    }
  }
  // No divisor, or a zero one, means 1.
  const given = parseQuantity(ref.divisor || '0', `${field}.divisor`);
  const divisor = given.num === 0n ? scale['']! : given;
  if (!divisors[resource].some((d) => equal(parseQuantity(d, d), divisor))) {
    throw new ContainerConfigError(
      `${field}.divisor: "${ref.divisor}" is not a ${resource} divisor the API server accepts (${divisors[resource].join(', ')})`,
    );
  }
  const { limits = {}, requests = {} } = target.resources ?? {};
  // The API server defaults a missing request to the limit; the kubelet, a missing limit to the node's
  // allocatable (a missing request stays 0).
  const set = kind === 'limits' ? limits[resource] : (requests[resource] ?? limits[resource]);
  const amount =
    set !== undefined
      ? units(parseQuantity(set, `container "${target.name}" resources.${kind}.${resource}`), resource)
      : kind === 'limits'
        ? BigInt(resource === 'cpu' ? node.cpu * 1000 : node.memory)
        : 0n;
  return String(ceilDiv(amount, units(divisor, resource)));
}
