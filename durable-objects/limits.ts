/**
 * What the tenant object decides with and reports back: the tenant's limit config, what it knows of
 * each key, and the state of every window after a decision (rendered into rate-limit headers by
 * the Worker).
 */
import type { BucketLimit } from "./token-bucket";

/** Which door a request comes through: the proxy (billed API traffic) or the tenant API. */
export type Door = "proxy" | "manage";

/** A token bucket plus calendar quotas (null = unlimited), in cost units. */
export type WindowLimits = BucketLimit & { dailyQuota: number | null; monthlyQuota: number | null };

export interface TenantConfig {
  /** Monotonic version (bumped by every change of the tenant or its plan); the object keeps the newest it has seen. */
  version: number;
  status: "active" | "suspended" | "past_due";
  /**
   * Dunning (epoch ms): a past-due tenant's requests pass, flagged, until this instant and are
   * refused (402) from it. Null or absent: no grace (an operator's `past_due` refuses at once).
   */
  graceUntil?: number | null;
  /** Dunning (epoch ms): when the tenant became past due, for the refusal's detail. */
  pastDueSince?: number | null;
  /** Live traffic: the plan's limits with the tenant's overrides. */
  limits: WindowLimits;
  /**
   * Test (`gw_test_`) traffic: the plan's sandbox limits, spent in their own bucket and quotas.
   * Absent in configs from before they existed: the live limits' numbers apply (own counters still).
   */
  sandbox?: WindowLimits;
  /** The plan is prepaid: live API traffic spends the object's credit balance (credits.ts). */
  credits?: boolean;
  /**
   * `leased`: the object lends isolates short leases of live traffic's units (lease.ts). Absent or
   * `exact`: every request is one admission.
   */
  admissionMode?: "exact" | "leased";
}

/**
 * The tenant API's management bucket, per tenant: not billed, not charged to any API quota. It
 * exists so usage export and timeseries (Postgres scans) cannot be used to hammer the database.
 */
export const MANAGEMENT_LIMIT: BucketLimit = { burstCapacity: 300, refillTokens: 5, refillPeriodSeconds: 1 };

/**
 * What the object knows of one key, pushed by the admin API with every key change. It wins over
 * whatever KV and isolate caches hold, so a revocation, a shortened (or extended) expiry, a narrowed
 * allowlist or a tighter per-key limit applies on the next request.
 */
export interface KeyState {
  /** Ms of the admin change that produced it; the object keeps the newest. */
  version: number;
  revokedAt: number | null;
  expiresAt: number | null;
  /** Absent = not known to the object (a block kept from before it stored key records): the edge's view applies. */
  ipAllowlist?: string[];
  rateLimit?: BucketLimit | null;
}

export interface BucketState {
  /** Capacity (`q`) and the time an empty bucket takes to fill (`w`). */
  limit: number;
  windowSeconds: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

export interface QuotaState {
  limit: number;
  windowSeconds: number;
  remaining: number;
  /** Epoch seconds at which the period resets. */
  resetAt: number;
}

export interface LimitState {
  burst: BucketState;
  /** The key's own, tighter bucket, when it has one. */
  key: BucketState | null;
  daily: QuotaState | null;
  monthly: QuotaState | null;
  /** Units the request was charged (or would have been): what "remaining" is measured against. */
  cost?: number;
}
