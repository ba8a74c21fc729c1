/**
 * Lease mode, the pure rules: how many units the tenant object lends one isolate (a "holder") for a
 * short lifetime, and what settling a finished lease gives back. No I/O and no clock: the tenant
 * object (tenant.ts) hands in its storage view and the time, then writes what these return in the
 * same synchronous transaction, as it does for `decideAdmission`.
 *
 * A lease is an admission of `units` at once: it goes through the same checks as one request (key
 * revoked or expired, tenant status, past due) and is charged to every window the request would
 * spend — the tenant bucket, the key's bucket, the daily and monthly quotas — all or nothing. Its
 * holder then admits requests locally until the lease runs out or its lifetime (≤ 1 s) ends, and
 * reports how many it admitted when it asks for the next one (or returns it). So:
 * - quotas are exact: a lease is drawn from what remains, and its unused part goes back to the
 *   quota at settlement (a lease whose holder died is never given back: under-admission, never over);
 * - a token bucket may admit more than its limit over a window by what leases hold outstanding at
 *   once, which is capped at `BUCKET_SHARE` (1 %) of each bucket's capacity, so this is the whole
 *   overshoot; a lease's unused tokens go back to each bucket at settlement (up to its capacity), as
 *   if they had never been drawn: a holder that renews with units left, or whose lifetime ends first,
 *   does not make a flooded tenant get fewer than its limit (−5 to −10 % of the burst in the bench
 *   before they did);
 * - a revoked key, a suspended or past-due tenant is refused at the next grant: within the lifetime.
 * Prepaid credits and Idempotency-Key requests never go through a lease (the edge admits them the
 * exact way), and the sandbox (test keys) neither.
 */
import {
  type AdmissionStore,
  type AdmitInput,
  decideAdmission,
  type PastDue,
  type Refusal,
} from "./admission";
import type { BucketState, LimitState, TenantConfig } from "./limits";
import { periodOf, type QuotaUsage, type QuotaWindow } from "./quota";
import type { BucketState as Bucket, BucketLimit } from "./token-bucket";

/** The longest lease the object grants: the bound on how late a revocation or suspension applies. */
export const MAX_LEASE_MS = 1_000;
/** Share of each bucket's capacity that unexpired leases may hold at once: the bucket's overshoot bound. */
export const BUCKET_SHARE = 0.01;
/**
 * The fewest requests a lease capped by a bucket's share is worth: below it, leasing would only add
 * a call per few requests, so the request is admitted exactly (a budget's own end still leases what is left).
 */
export const MIN_SHARE_REQUESTS = 4;
/** After its expiry, how long a lease waits for its holder's report before it counts as lapsed. */
export const LAPSE_GRACE_MS = 30_000;
const HOUR_MS = 3_600_000;

/** What a holder reports of a lease it no longer admits from. */
export interface LeaseReport {
  leaseId: string;
  /** Requests admitted from the lease, and the units they cost. */
  requests: number;
  units: number;
}

export interface LeaseInput {
  /** The isolate asking (one id per isolate): leases are counted per holder. */
  holder: string;
  keyId: string;
  /** The edge's view of the key's own bucket; what the object knows of the key wins. */
  keyLimit: BucketLimit | null;
  /** The edge's view of the key's allowlist; the lease carries the effective one back. */
  ipAllowlist?: string[];
  /** The cost of the request that asked: the least a lease is worth granting. */
  cost: number;
  /** Units the holder asks for (its recent rate over a lifetime, with headroom). */
  want: number;
  lifetimeMs: number;
  /** The edge's view of the tenant; used if newer than what the object holds. */
  config: TenantConfig;
  /** Leases the holder has finished with, settled before the new one is granted. */
  settle: LeaseReport[];
}

/** A granted lease as the holder uses it. */
export interface Lease {
  leaseId: string;
  units: number;
  /** The object's clock at grant: the admission time of every request admitted from the lease. */
  grantedAt: number;
  expiresAt: number;
  /** The windows after the lease was drawn (the holder adds back what it has not used). */
  limits: LimitState;
  /** The key's effective IP allowlist: the holder checks each request against it. */
  ipAllowlist: string[];
  pastDue?: PastDue;
}

export type LeaseResult =
  | ({ outcome: "granted" } & Lease)
  /** The plan is not leased, or leases may not hold more of a bucket now: admit the request exactly. */
  | { outcome: "exact" }
  | { outcome: "rate_limited" | "quota_exceeded"; retryAfter: number; limits: LimitState }
  | { outcome: Refusal; pastDue?: PastDue };

/** What a grant charges: the same writes as an admission of `units`. */
export type LeaseDecision =
  | {
      outcome: "granted";
      units: number;
      limits: LimitState;
      ipAllowlist: string[];
      pastDue?: PastDue;
      writes: Extract<ReturnType<typeof decideAdmission>, { outcome: "admitted" }>["writes"];
    }
  | Exclude<LeaseResult, { outcome: "granted" }>;

/** Units the holder's unexpired leases may still take of a bucket: its share, less what leases hold. */
export function bucketShare(bucket: BucketState, outstanding: number): number {
  return Math.floor(bucket.limit * BUCKET_SHARE) - outstanding;
}

/**
 * The lease for `input` at `now`: refused as the asking request would be, else as many units as
 * it wants, capped by every window's remaining budget and every bucket's share. `outstanding`
 * answers the units unexpired leases hold of the tenant bucket and of the key's bucket.
 */
export function decideLease(
  input: LeaseInput,
  config: TenantConfig,
  store: AdmissionStore,
  outstanding: { tenant: number; key: number },
  now: number,
): LeaseDecision {
  if (config.admissionMode !== "leased") return { outcome: "exact" };
  // The allowlist is per request: the lease carries it and the holder checks every request.
  const stored = store.key(input.keyId);
  const ipAllowlist = stored?.ipAllowlist ?? input.ipAllowlist ?? [];
  const view: AdmissionStore = stored ? { ...store, key: () => ({ ...stored, ipAllowlist: [] }) } : store;
  const admission = (cost: number): AdmitInput => ({
    keyId: input.keyId,
    keyLimit: input.keyLimit,
    env: "live",
    ipAllowlist: [],
    cost,
    config,
    idempotency: null,
  });

  const least = Math.max(1, input.cost);
  const probe = decideAdmission(admission(least), config, view, now);
  if (
    probe.outcome === "replay" ||
    probe.outcome === "credits_exhausted" ||
    probe.outcome === "config_needed" ||
    probe.outcome === "overloaded"
  )
    return { outcome: "exact" };
  if (probe.outcome !== "admitted") return probe;

  // `remaining` is after the probe's charge: the room is what it took plus what is left.
  const { burst, key, daily, monthly } = probe.limits;
  const share = Math.min(
    bucketShare(burst, outstanding.tenant),
    key ? bucketShare(key, outstanding.key) : Number.POSITIVE_INFINITY,
  );
  const caps = [Math.max(least, input.want), share, least + burst.remaining];
  if (key) caps.push(least + key.remaining);
  if (daily) caps.push(least + daily.remaining);
  if (monthly) caps.push(least + monthly.remaining);
  const units = Math.min(...caps);
  if (units < least || (units === share && share < MIN_SHARE_REQUESTS * least)) return { outcome: "exact" };

  const grant = decideAdmission(admission(units), config, view, now);
  if (grant.outcome !== "admitted") return { outcome: "exact" };
  return {
    outcome: "granted",
    units,
    limits: grant.limits,
    ipAllowlist,
    ...(grant.pastDue ? { pastDue: grant.pastDue } : {}),
    writes: grant.writes,
  };
}

/** A lease as the object keeps it until it is settled or lapses. */
export interface HeldLease {
  units: number;
  grantedAt: number;
}

/** What settling a lease writes: the ledger's hour and counts, and the units the quotas get back. */
export interface Settlement {
  /** The hour of the grant: the hour of every request admitted from it (their usage events say so too). */
  hour: number;
  requests: number;
  units: number;
  unused: number;
}

/** The settlement of `lease` from its holder's report (never more than the lease held). */
export function settle(lease: HeldLease, report: LeaseReport): Settlement {
  const units = Math.min(lease.units, Math.max(0, Math.floor(report.units)));
  return {
    hour: Math.floor(lease.grantedAt / HOUR_MS) * HOUR_MS,
    requests: Math.max(0, Math.floor(report.requests)),
    units,
    unused: lease.units - units,
  };
}

/**
 * A quota's usage with a lease's unused units given back — only in the period the lease was drawn
 * from (a period that has rolled over starts from zero and owes nothing). Null: nothing to write.
 */
export function refund(
  window: QuotaWindow,
  usage: QuotaUsage | null,
  unused: number,
  grantedAt: number,
): QuotaUsage | null {
  if (!usage || unused <= 0 || usage.period !== periodOf(window, grantedAt)) return null;
  return { period: usage.period, used: Math.max(0, usage.used - unused) };
}

/**
 * A bucket with a lease's unused tokens given back, up to its capacity: the state it would have had
 * if they had never been drawn (refill is additive and capped, so when they come back does not
 * matter). Null: nothing to write.
 */
export function refundTokens(state: Bucket | null, unused: number): Bucket | null {
  if (!state || unused <= 0) return null;
  const tokens = Math.min(state.capacity, state.tokens + unused);
  return tokens === state.tokens ? null : { ...state, tokens };
}

/** The lifetime the object grants for the one asked: at least 1 ms, at most `MAX_LEASE_MS`. */
export function lifetime(asked: number): number {
  return Math.min(MAX_LEASE_MS, Math.max(1, Math.floor(asked) || MAX_LEASE_MS));
}
