/**
 * Kubernetes resource quantities as a run's placement takes them: CPU in cores or millicores ("2", "1.5",
 * "500m"), memory in bytes with an optional decimal or binary suffix ("512Mi", "8Gi", "1G"). A subset of
 * what the API server accepts, the forms people write; comparing two needs their values.
 */

export const cpuQuantityPattern = '^[0-9]+(\\.[0-9]+)?m?$';
export const memoryQuantityPattern = '^[0-9]+(\\.[0-9]+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$';

const factors: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a quantity matching either pattern: cores for CPU, bytes for memory. */
export function quantityValue(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q);
  if (!m) throw new Error(`"${q}" is not a resource quantity`);
  return Number(m[1]) * (factors[m[2] ?? ''] as number);
}
