/**
 * Fixed-bucket latency histogram for rollups: counts per bucket can be added across rows and
 * ranges, and percentiles read back at bucket resolution. Pure.
 */

/** Upper bounds (ms, inclusive) of each bucket; the last bucket is everything above. */
export const LATENCY_BOUNDS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
] as const;
export const HISTOGRAM_SIZE = LATENCY_BOUNDS_MS.length + 1;

export function emptyHistogram(): number[] {
  return new Array<number>(HISTOGRAM_SIZE).fill(0);
}

export function bucketOf(latencyMs: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound);
  return i < 0 ? LATENCY_BOUNDS_MS.length : i;
}

export function addHistograms(a: readonly number[], b: readonly number[]): number[] {
  return Array.from({ length: HISTOGRAM_SIZE }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0));
}

/**
 * The `p`-th percentile (0 < p ≤ 1) as the upper bound of the bucket it falls in (the last
 * bucket reports its lower bound), or null for an empty histogram.
 */
export function percentile(histogram: readonly number[], p: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_SIZE; i++) {
    seen += histogram[i] ?? 0;
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1] ?? null;
  }
  return null;
}
