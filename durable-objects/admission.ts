/**
 * The admission decision: one pure function over plain state, all-or-nothing across every window.
 * No I/O and no clock: the tenant object (tenant.ts) hands it a read-only view of its storage and
 * the time, then persists the writes the decision returns — with no `await` in between, which is
 * what makes the limits exact under any concurrency.
 *
 * In order: what the object knows of the key (revoked, expired, IP allowlist), tenant status,
 * Idempotency-Key state, then the windows the request spends:
 * - proxy door, live key: the tenant's bucket, the key's own bucket, daily and monthly quotas;
 * - proxy door, test key: the sandbox bucket and sandbox quotas (never the live ones), the key's bucket;
 * - manage door (the tenant API): the management bucket only — no quota, no ledger, never billed.
 * Last, a prepaid tenant's live request on a billable route must fit its credit balance (credits.ts),
 * and holds its cost from it when admitted.
 */
import { ipAllowed } from "./cidr";
import type { SlotRequest } from "./concurrency";
import { creditCost } from "./credits";
import {
  decide as decideIdempotency,
  type IdempotencyRecord,
  RETENTION_MS,
  type RecordedResponse,
} from "./idempotency";
import {
  type BucketState,
  type Door,
  type KeyState,
  type LimitState,
  MANAGEMENT_LIMIT,
  type QuotaState,
  type TenantConfig,
  type WindowLimits,
} from "./limits";
import { currentUsage, periodEnd, type QuotaUsage, type QuotaWindow, WINDOW_SECONDS } from "./quota";
import {
  type BucketState as Bucket,
  type BucketLimit,
  refill,
  secondsUntil,
  secondsUntilFull,
  windowSeconds,
} from "./token-bucket";

export interface AdmitInput {
  keyId: string;
  /** The edge's view of the key's own bucket; what the object knows of the key wins. */
  keyLimit: BucketLimit | null;
  /** `test` traffic spends the sandbox windows. Default `live`. */
  env?: "live" | "test";
  /** The edge's view of the key's IP allowlist; what the object knows of the key wins. */
  ipAllowlist?: string[];
  /** The client's address (CF-Connecting-IP), checked against the allowlist. */
  clientIp?: string | null;
  /** Units this request costs (the route's cost). */
  cost: number;
  /**
   * The edge's view of the tenant (from KV); used if newer than what the object holds. Left out
   * (a smaller call) once the object is known to hold `configVersion` or newer: the object then
   * answers `config_needed` if it does not, and the caller sends it again with the config.
   */
  config?: TenantConfig;
  /** The version of the edge's view; required when `config` is left out. */
  configVersion?: number;
  idempotency: { key: string; fingerprint: string; leaseMs: number } | null;
  /** Default `proxy`. */
  door?: Door;
  /** Manage door: the request costs money or creates keys, so a past-due tenant is refused. */
  write?: boolean;
  /** Manage door: also report the current period's usage (the usage API, without a second call). */
  peek?: boolean;
  /**
   * Set by the proxy for a billable route: a prepaid tenant's live request holds its cost from the
   * credit balance for at most this long (released sooner if it turns out not billable).
   */
  creditHoldMs?: number;
  /**
   * Set by the proxy only while the route's origin is degraded (fair shedding): the request takes
   * an in-flight slot within the tenant's share, or is refused `overloaded` before anything is charged.
   */
  slot?: SlotRequest;
}

/** Why a request is refused before any window is looked at. */
export type Refusal =
  | "revoked"
  | "expired"
  | "ip_not_allowed"
  | "suspended"
  | "past_due"
  | "idempotency_in_flight"
  | "idempotency_mismatch";

/** Usage of the current period per window; `limit`/`remaining` are null when the window has no quota. */
export interface CurrentUsage {
  burst: BucketState;
  daily: { used: number; limit: number | null; remaining: number | null; resetAt: number };
  monthly: { used: number; limit: number | null; remaining: number | null; resetAt: number };
}

/** A past-due tenant's dunning dates (epoch ms), as the object holds them. */
export interface PastDue {
  since: number | null;
  /** Requests pass until this instant, refused from it; null = refused at once. */
  graceUntil: number | null;
}

export type AdmitResult =
  | {
      outcome: "admitted";
      limits: LimitState;
      leaseToken: string | null;
      admittedAt: number;
      usage?: CurrentUsage;
      /** Set while a past-due tenant is in its grace period: the edge warns the client (Warning header). */
      pastDue?: PastDue;
      /** The credits this request holds (release them with `releaseCredits(id)` if it is not billable). */
      creditHold?: { id: string; units: number; balance: number } | null;
      /** The in-flight slot this request holds (release it with `releaseSlot` after the response). */
      slotId?: string;
    }
  | { outcome: "overloaded"; held: number }
  | { outcome: "rate_limited" | "quota_exceeded"; retryAfter: number; limits: LimitState }
  | { outcome: "credits_exhausted"; balance: number; cost: number; limits: LimitState }
  | { outcome: "replay"; response: RecordedResponse; limits: LimitState }
  | { outcome: Refusal; pastDue?: PastDue }
  /** The call left the config out, and the object holds an older one (or none): nothing was decided. */
  | { outcome: "config_needed" };

/** A read-only view of the object's storage. */
export interface AdmissionStore {
  key(keyId: string): KeyState | null;
  bucket(name: string): Bucket | null;
  quota(name: string): QuotaUsage | null;
  idempotency(key: string): IdempotencyRecord | null;
  /** The prepaid credit balance (0 when the tenant never had any). */
  creditBalance(): number;
}

/** What an admitted request changes; the shell writes all of it in one transaction. */
export interface Writes {
  buckets: { name: string; state: Bucket }[];
  /** With each window's quota (null = none), so the shell can tell which thresholds the request crossed. */
  quotas: { name: string; window: QuotaWindow; quota: number | null; usage: QuotaUsage }[];
  /** Units to count in the admission ledger (reconciliation's edge side); null for the manage door. */
  ledgerUnits: number | null;
  idempotency: { key: string; fingerprint: string; leaseUntil: number; expiresAt: number } | null;
  /** Credits held from the balance with the request, until `expiresAt` at most; null when none. */
  creditHold: { units: number; expiresAt: number } | null;
}

export type Decision =
  | { outcome: "admitted"; limits: LimitState; writes: Writes; pastDue?: PastDue }
  | Exclude<AdmitResult, { outcome: "admitted" }>;

/** A request that can never fit (cost above capacity) is told to come back after a day, not never. */
export const MAX_RETRY_AFTER_S = 86_400;

interface Windows {
  buckets: { name: string; limit: BucketLimit; state: Bucket }[];
  quotas: { name: string; window: QuotaWindow; quota: number | null; usage: QuotaUsage; end: number }[];
}

/**
 * The limits a request of `env` is held to: live traffic the tenant's, test traffic the sandbox's
 * (the live numbers when a config has none). Either way test traffic has its own counters.
 */
export function limitsFor(config: TenantConfig, env: "live" | "test"): WindowLimits {
  return env === "test" ? (config.sandbox ?? config.limits) : config.limits;
}

/** Stored quota rows: live ones keep their historical names, sandbox ones are prefixed. */
const quotaName = (env: "live" | "test", window: QuotaWindow) =>
  env === "test" ? `sandbox:${window}` : window;

/** Every window the request spends, as of `now`: buckets refilled, quotas rolled over. */
function windowsFor(
  door: Door,
  env: "live" | "test",
  config: TenantConfig,
  key: { id: string; limit: BucketLimit | null },
  store: AdmissionStore,
  now: number,
): Windows {
  const bucket = (name: string, limit: BucketLimit) => ({
    name,
    limit,
    state: refill(limit, store.bucket(name), now),
  });
  if (door === "manage") return { buckets: [bucket("manage", MANAGEMENT_LIMIT)], quotas: [] };
  const limits = limitsFor(config, env);
  const buckets = [bucket(env === "test" ? "sandbox" : "tenant", limits)];
  if (key.limit) buckets.push(bucket(`key:${key.id}`, key.limit));
  // Usage is counted in both periods even without a quota, so a quota set mid-period (or the
  // usage API) sees the period's real usage.
  const quotas = (["daily", "monthly"] as const).map((window) => {
    const name = quotaName(env, window);
    return {
      name,
      window,
      quota: window === "daily" ? limits.dailyQuota : limits.monthlyQuota,
      usage: currentUsage(window, store.quota(name), now),
      end: periodEnd(window, now),
    };
  });
  return { buckets, quotas };
}

/** The header view of the windows. */
function snapshot({ buckets, quotas }: Windows, cost: number): LimitState {
  const bucketState = (b: Windows["buckets"][number]): BucketState => ({
    limit: b.limit.burstCapacity,
    windowSeconds: windowSeconds(b.limit),
    remaining: Math.max(0, Math.floor(b.state.tokens)),
    resetSeconds: secondsUntilFull(b.limit, b.state),
  });
  const quotaState = (window: QuotaWindow): QuotaState | null => {
    const q = quotas.find((x) => x.window === window);
    if (!q || q.quota === null) return null;
    return {
      limit: q.quota,
      windowSeconds: WINDOW_SECONDS[window],
      remaining: Math.max(0, q.quota - q.usage.used),
      resetAt: Math.floor(q.end / 1000),
    };
  };
  const [first, key] = buckets as [Windows["buckets"][number], Windows["buckets"][number]?];
  return {
    burst: bucketState(first),
    key: key ? bucketState(key) : null,
    daily: quotaState("daily"),
    monthly: quotaState("monthly"),
    cost,
  };
}

/** The key as the object decides on it: its own record where it has one, else the edge's view. */
function effectiveKey(
  stored: KeyState | null,
  input: AdmitInput,
): {
  revokedAt: number | null;
  expiresAt: number | null;
  ipAllowlist: string[];
  rateLimit: BucketLimit | null;
} {
  return {
    revokedAt: stored?.revokedAt ?? null,
    // Without a record, the edge already refused an expired key from its own copy.
    expiresAt: stored ? stored.expiresAt : null,
    ipAllowlist: stored?.ipAllowlist ?? input.ipAllowlist ?? [],
    rateLimit: stored && stored.rateLimit !== undefined ? stored.rateLimit : input.keyLimit,
  };
}

/**
 * Whether a past-due tenant's requests still pass at `now`: until the grace period's end, refused
 * from it. The one rule, used by the object at admission and by the edge's pre-check.
 */
export const withinGrace = (graceUntil: number | null | undefined, now: number): boolean =>
  graceUntil != null && now < graceUntil;

/** A past-due tenant's dunning dates; null when the tenant is not past due. */
export function pastDueOf(config: TenantConfig): PastDue | null {
  if (config.status !== "past_due") return null;
  return { since: config.pastDueSince ?? null, graceUntil: config.graceUntil ?? null };
}

/**
 * The whole decision for one request at `now`, given the config the object holds (already the
 * newer of its own and the edge's). Returns what to write when admitted; nothing otherwise.
 */
export function decideAdmission(
  input: AdmitInput,
  config: TenantConfig,
  store: AdmissionStore,
  now: number,
): Decision {
  const door = input.door ?? "proxy";
  const env = input.env ?? "live";
  const key = effectiveKey(store.key(input.keyId), input);
  if (key.revokedAt !== null && key.revokedAt <= now) return { outcome: "revoked" };
  if (key.expiresAt !== null && key.expiresAt <= now) return { outcome: "expired" };
  if (key.ipAllowlist.length > 0 && !ipAllowed(input.clientIp ?? "", key.ipAllowlist))
    return { outcome: "ip_not_allowed" };

  if (config.status === "suspended") return { outcome: "suspended" };
  // Past due, within the grace period: everything passes, flagged so the edge warns the client.
  // After it (or without one): the tenant API still serves reads; API traffic and anything that
  // costs money do not.
  const pastDue = pastDueOf(config);
  const inGrace = pastDue !== null && withinGrace(pastDue.graceUntil, now);
  if (pastDue && !inGrace && (door === "proxy" || input.write)) return { outcome: "past_due", pastDue };

  const windows = windowsFor(door, env, config, { id: input.keyId, limit: key.rateLimit }, store, now);

  if (input.idempotency) {
    const decision = decideIdempotency(
      store.idempotency(input.idempotency.key),
      input.idempotency.fingerprint,
      now,
    );
    if (decision.kind === "mismatch") return { outcome: "idempotency_mismatch" };
    if (decision.kind === "in_flight") return { outcome: "idempotency_in_flight" };
    if (decision.kind === "replay")
      return { outcome: "replay", response: decision.response, limits: snapshot(windows, input.cost) };
  }

  const waits: { outcome: "rate_limited" | "quota_exceeded"; seconds: number }[] = [];
  for (const b of windows.buckets) {
    const seconds = secondsUntil(b.limit, b.state, input.cost);
    if (seconds > 0) waits.push({ outcome: "rate_limited", seconds });
  }
  for (const q of windows.quotas) {
    if (q.quota !== null && q.usage.used + input.cost > q.quota)
      waits.push({ outcome: "quota_exceeded", seconds: Math.ceil((q.end - now) / 1000) });
  }
  if (waits.length > 0) {
    const longest = waits.reduce((a, b) => (b.seconds > a.seconds ? b : a));
    return {
      outcome: waits.some((w) => w.outcome === "quota_exceeded") ? "quota_exceeded" : "rate_limited",
      retryAfter: Math.min(MAX_RETRY_AFTER_S, Math.max(1, longest.seconds)),
      limits: snapshot(windows, input.cost),
    };
  }

  // Credits come last: a request refused by a window has not spent any.
  const credits = creditCost(config, { door, env, cost: input.cost, creditHoldMs: input.creditHoldMs });
  const balance = credits > 0 ? store.creditBalance() : 0;
  if (credits > balance)
    return { outcome: "credits_exhausted", balance, cost: credits, limits: snapshot(windows, input.cost) };

  // Every window has room: charge them all.
  for (const b of windows.buckets) b.state = { ...b.state, tokens: b.state.tokens - input.cost };
  for (const q of windows.quotas) q.usage = { ...q.usage, used: q.usage.used + input.cost };
  return {
    outcome: "admitted",
    ...(pastDue && inGrace ? { pastDue } : {}),
    limits: snapshot(windows, input.cost),
    writes: {
      buckets: windows.buckets.map(({ name, state }) => ({ name, state })),
      quotas: windows.quotas.map(({ name, window, quota, usage }) => ({ name, window, quota, usage })),
      ledgerUnits: door === "proxy" ? input.cost : null,
      idempotency: input.idempotency
        ? {
            key: input.idempotency.key,
            fingerprint: input.idempotency.fingerprint,
            leaseUntil: now + input.idempotency.leaseMs,
            expiresAt: now + RETENTION_MS,
          }
        : null,
      creditHold:
        credits > 0 && input.creditHoldMs !== undefined
          ? { units: credits, expiresAt: now + input.creditHoldMs }
          : null,
    },
  };
}

/** The current period's usage in every window of `env`'s traffic, charging nothing (the usage API). */
export function periodUsage(
  config: TenantConfig,
  env: "live" | "test",
  store: AdmissionStore,
  now: number,
): CurrentUsage {
  const windows = windowsFor("proxy", env, config, { id: "", limit: null }, store, now);
  const quota = (window: QuotaWindow) => {
    const q = windows.quotas.find((x) => x.window === window) as Windows["quotas"][number];
    return {
      used: q.usage.used,
      limit: q.quota,
      remaining: q.quota === null ? null : Math.max(0, q.quota - q.usage.used),
      resetAt: Math.floor(q.end / 1000),
    };
  };
  return { burst: snapshot(windows, 0).burst, daily: quota("daily"), monthly: quota("monthly") };
}

/**
 * Merges a key change from the admin API into what the object holds: the newer version wins,
 * except that a revocation is final (the earliest revocation time is kept).
 */
export function mergeKeyState(stored: KeyState | null, incoming: KeyState): KeyState {
  const revokedAt =
    stored?.revokedAt != null && incoming.revokedAt != null
      ? Math.min(stored.revokedAt, incoming.revokedAt)
      : (stored?.revokedAt ?? incoming.revokedAt);
  const newer = !stored || incoming.version >= stored.version ? incoming : stored;
  return { ...newer, revokedAt };
}
