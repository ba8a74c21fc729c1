/**
 * Rate-limit response headers, from the tenant object's view of every window:
 * - `RateLimit-Policy` / `RateLimit` (IETF httpapi ratelimit-headers draft, RFC 8941 lists of
 *   strings with `q`/`w` and `r`/`t` parameters), one item per window;
 * - the `X-RateLimit-*` set existing clients parse, describing the window that will deny first:
 *   the one with the fewest requests of this cost left (the tenant's or sandbox bucket, the key's
 *   bucket, the daily or the monthly quota); on a tie, the one that resets last, since that is
 *   the refusal that lasts longest. A client reading `Remaining: 0` knows its next request is refused.
 */
import type { BucketState, LimitState, QuotaState } from "../../durable-objects/limits";

export function rateLimitHeaders(
  state: LimitState,
  tenant: { slug: string; planName: string },
  nowMs: number = Date.now(),
): Record<string, string> {
  const now = Math.floor(nowMs / 1000);
  const buckets: [string, BucketState][] = [["burst", state.burst]];
  if (state.key) buckets.push(["key", state.key]);
  const quotas: [string, QuotaState][] = [];
  if (state.daily) quotas.push(["daily", state.daily]);
  if (state.monthly) quotas.push(["monthly", state.monthly]);

  const policy = [
    ...buckets.map(([name, b]) => `"${name}";q=${b.limit};w=${b.windowSeconds}`),
    ...quotas.map(([name, q]) => `"${name}";q=${q.limit};w=${q.windowSeconds}`),
  ];
  const current = [
    ...buckets.map(([name, b]) => `"${name}";r=${b.remaining};t=${b.resetSeconds}`),
    ...quotas.map(([name, q]) => `"${name}";r=${q.remaining};t=${Math.max(0, q.resetAt - now)}`),
  ];

  const burstRemaining = Math.min(state.burst.remaining, state.key?.remaining ?? Number.POSITIVE_INFINITY);
  const cost = Math.max(1, state.cost ?? 1);
  const windows = [
    ...buckets.map(([, b]) => ({ limit: b.limit, remaining: b.remaining, reset: now + b.resetSeconds })),
    ...quotas.map(([, q]) => ({ limit: q.limit, remaining: q.remaining, reset: q.resetAt })),
  ];
  const left = (w: (typeof windows)[number]) => Math.floor(w.remaining / cost);
  const binding = windows.reduce((a, b) =>
    left(b) < left(a) || (left(b) === left(a) && b.reset > a.reset) ? b : a,
  );
  return {
    "ratelimit-policy": policy.join(", "),
    ratelimit: current.join(", "),
    "x-ratelimit-tenant": tenant.slug,
    "x-ratelimit-plan": tenant.planName,
    "x-ratelimit-limit": String(binding.limit),
    "x-ratelimit-remaining": String(binding.remaining),
    "x-ratelimit-reset": String(binding.reset),
    "x-ratelimit-burstremaining": String(burstRemaining),
  };
}
