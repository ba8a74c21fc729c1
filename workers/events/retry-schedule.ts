/**
 * When a failed webhook delivery is tried again: the retry schedule (attempt 1 at once, then after
 * ≈ 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — 8 attempts over ≈ 28 h), its jitter, and the
 * receiver's `Retry-After`. Pure: time and randomness are parameters.
 */

/** Seconds to wait after failed attempt n (index n - 1) before attempt n + 1. */
export const RETRY_DELAYS_S = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000] as const;

/** Attempt 1 plus one per retry: after the 8th failure the delivery is dead. */
export const MAX_ATTEMPTS = RETRY_DELAYS_S.length + 1;

/** ±10 %: receivers that failed together (an outage) are not all retried in the same second. */
export const JITTER = 0.1;

/** The longest wait a `Retry-After` can ask for: a queue message's delay allows 12 h. */
export const MAX_RETRY_AFTER_S = 36_000;

/**
 * Seconds from `now` that a `Retry-After` value asks for: delta-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`). Null when absent, unreadable or not in the future.
 */
export function parseRetryAfter(value: string | null, now: Date): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d{1,10}$/.test(trimmed)) {
    const seconds = Number(trimmed);
    return seconds > 0 ? seconds : null;
  }
  // Only a date with letters in it: `Date.parse` also reads bare numbers like "-5" or "1.5" as years.
  if (!/[a-z]/i.test(trimmed)) return null;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  const seconds = Math.ceil((at - now.getTime()) / 1000);
  return seconds > 0 ? seconds : null;
}

/**
 * Seconds until the attempt after failed attempt `attempt` (1-based), or null when it was the last.
 * The schedule's delay gets ±10 % jitter (`random` in [0, 1)); a longer `retryAfterS` (the
 * receiver's `Retry-After` on 429/503) wins, capped at 10 h.
 */
export function retryDelaySeconds(
  attempt: number,
  options: { retryAfterS?: number | null; random?: number } = {},
): number | null {
  const base = RETRY_DELAYS_S[attempt - 1];
  if (base === undefined) return null;
  const random = options.random ?? Math.random();
  const jittered = Math.max(1, Math.round(base * (1 - JITTER + 2 * JITTER * random)));
  const asked = Math.min(options.retryAfterS ?? 0, MAX_RETRY_AFTER_S);
  return Math.max(jittered, asked);
}
