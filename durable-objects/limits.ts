/**
 * What the tenant object decides with and reports back: the tenant's limit config and the state of
 * every window after a decision (rendered into rate-limit headers by the Worker).
 */
import type { BucketLimit } from "./token-bucket";

export interface TenantConfig {
  /** Monotonic version (ms of the last admin change); the object keeps the newest it has seen. */
  version: number;
  status: "active" | "suspended" | "past_due";
  limits: BucketLimit & { dailyQuota: number | null; monthlyQuota: number | null };
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
}
