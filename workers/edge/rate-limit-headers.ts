/**
 * Rate-limit response headers, from the tenant object's view of every window:
 * - `RateLimit-Policy` / `RateLimit` (IETF httpapi ratelimit-headers draft, RFC 8941 lists of
 *   strings with `q`/`w` and `r`/`t` parameters), one item per window;
 * - the `X-RateLimit-*` set existing clients parse, describing the longest quota window that is
 *   set (daily, else monthly, else the burst bucket).
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
  const main = state.daily ?? state.monthly;
  return {
    "ratelimit-policy": policy.join(", "),
    ratelimit: current.join(", "),
    "x-ratelimit-tenant": tenant.slug,
    "x-ratelimit-plan": tenant.planName,
    "x-ratelimit-limit": String(main?.limit ?? state.burst.limit),
    "x-ratelimit-remaining": String(main?.remaining ?? burstRemaining),
    "x-ratelimit-reset": String(main?.resetAt ?? now + state.burst.resetSeconds),
    "x-ratelimit-burstremaining": String(burstRemaining),
  };
}
