/**
 * Token bucket math. Pure: no I/O, no clock of its own.
 *
 * A bucket holds up to `burstCapacity` tokens and regains `refillTokens` every
 * `refillPeriodSeconds`, continuously (lazy refill computed from the elapsed time on each call,
 * then persisted by the caller: no timers, nothing only in memory).
 */

export interface BucketLimit {
  burstCapacity: number;
  refillTokens: number;
  refillPeriodSeconds: number;
}

export interface BucketState {
  tokens: number;
  /** Epoch ms of the last refill computation. */
  updatedAt: number;
  /** The capacity the state was computed with, to credit an upgrade's extra burst at once. */
  capacity: number;
}

/**
 * Tokens regained in `elapsed` ms. Multiplied before dividing: a whole number of periods regains
 * whole tokens, so a client that waits exactly its Retry-After finds them (3_600_000 ms at a per-ms
 * rate of 1 / 3_600_000 is 0.9999999999999999 tokens in floats).
 */
const regained = (limit: BucketLimit, elapsed: number) =>
  (elapsed * limit.refillTokens) / (limit.refillPeriodSeconds * 1000);

/**
 * The bucket as of `now`: a new bucket starts full; a raised capacity adds its extra tokens at
 * once (an upgrade takes effect on the next request); a lowered one caps the tokens.
 */
export function refill(limit: BucketLimit, state: BucketState | null, now: number): BucketState {
  const capacity = limit.burstCapacity;
  if (!state) return { tokens: capacity, updatedAt: now, capacity };
  const elapsed = Math.max(0, now - state.updatedAt);
  const grown = Math.max(0, capacity - state.capacity);
  return {
    tokens: Math.min(capacity, state.tokens + grown + regained(limit, elapsed)),
    updatedAt: now,
    capacity,
  };
}

/**
 * Whole seconds until the bucket holds `cost` tokens (0 if it already does). A cost above the
 * capacity can never be met: Infinity.
 */
export function secondsUntil(limit: BucketLimit, state: BucketState, cost: number): number {
  if (cost > limit.burstCapacity) return Number.POSITIVE_INFINITY;
  const missing = cost - state.tokens;
  if (missing <= 0) return 0;
  // In whole periods, not via the per-ms rate: 1 / (1 / 3_600_000) is not exactly 3_600_000 in floats.
  return Math.ceil((missing * limit.refillPeriodSeconds) / limit.refillTokens);
}

/** Whole seconds until the bucket is full again (the `t` of the RateLimit header). */
export function secondsUntilFull(limit: BucketLimit, state: BucketState): number {
  return secondsUntil(limit, state, limit.burstCapacity);
}

/** The policy window in seconds: how long an empty bucket takes to fill (the `w` of RateLimit-Policy). */
export function windowSeconds(limit: BucketLimit): number {
  return Math.ceil((limit.burstCapacity * limit.refillPeriodSeconds) / limit.refillTokens);
}
