/**
 * Lease mode, the isolate's side: this isolate's leases, one per (tenant, key), from which it
 * admits a leased plan's live requests without calling the tenant object (durable-objects/lease.ts
 * has the rules and bounds). Why: one object per tenant caps a tenant at what one object serves;
 * with leases a hot tenant costs the object one call per isolate per lease lifetime.
 *
 * - A request takes its cost from the current lease while the lease has it and its lifetime has
 *   not ended (the lifetime is counted from when the ask was sent, so it ends no later than the
 *   object's, whatever the clocks say). The key's IP allowlist, carried by the lease, is checked here.
 * - Before the lease runs dry (a quarter left, or three quarters of its lifetime gone) one renewal
 *   starts in the background; a request that finds no usable lease waits for the renewal in flight
 *   (or starts it): one call at a time per key, never a herd. If the requests that waited with it
 *   took that lease, it waits for the next (up to MAX_ROUNDS), so a burst at the end of a quota is
 *   admitted to the unit.
 * - A renewal refused for a window (rate, quota) or answered `exact` leaves the current lease in
 *   use to its end (its units are drawn); any other refusal (revoked, suspended) stops it at once.
 * - Each renewal carries the report of the leases this isolate finished with (requests and units
 *   admitted), so the object's ledger and quotas are settled without a call of their own. When a
 *   lease's lifetime ends and no newer one replaced it (the traffic stopped), its report is returned
 *   at once (`returnLeases`).
 * - Every request admitted from a lease is admitted at the lease's grant time (the object's clock):
 *   its usage event lands in the hour the object's ledger counts it in.
 * - Rate-limit headers come from the lease's snapshot at grant, plus what this isolate has not used
 *   of it: other isolates' use and the refill since the grant (≤ one lifetime) are not in them.
 */
import type { AdmitInput, AdmitResult } from "../../durable-objects/admission";
import { ipAllowed } from "../../durable-objects/cidr";
import type { Lease, LeaseReport, LeaseResult } from "../../durable-objects/lease";
import type { BucketState, LimitState, QuotaState, TenantConfig } from "../../durable-objects/limits";
import type { Bindings } from "../env";
import { log } from "../log";
import type { TenantRecord } from "../shared/auth-context";
import { lease as askLease, returnLeases } from "../shared/tenant-client";

/** Renew when this share of a lease is left, or this share of its lifetime has passed. */
const RENEW_LEFT = 0.25;
const RENEW_AGE = 0.75;
/** A lease asks for its recent rate over this many lifetimes, and at least this many requests' worth. */
const HEADROOM = 2;
const MIN_REQUESTS = 16;
/** A request waits for at most this many leases in turn before it is decided exactly. */
const MAX_ROUNDS = 3;

type LeaseEnv = Pick<Bindings, "TENANT">;

interface Held extends Lease {
  used: number;
  requests: number;
  receivedAt: number;
  /** Local clock: no request is admitted from the lease at or after it. */
  deadline: number;
  renewAt: number;
  /** Its lifetime has run out (set by its timer, whatever the clock reads). */
  over: boolean;
  /** A renewal was refused while it still had units: it is used up, but not renewed early again. */
  last: boolean;
}

interface Pool {
  name: string;
  current: Held | null;
  /** Reports of leases no longer admitted from, for the next call. */
  retired: LeaseReport[];
  renewing: Promise<LeaseResult> | null;
  /** Units per ms admitted from the last finished lease. */
  rate: number;
  /** The object answered `exact`: admit this key exactly until then. */
  exactUntil: number;
}

const pools = new Map<string, Pool>();
/** This isolate, as a lease holder (random values are not allowed at module scope in workerd). */
let holder: string | undefined;
const holderId = () => {
  holder ??= crypto.randomUUID();
  return holder;
};

/**
 * Whether a request goes through a lease: a leased plan's live request without an Idempotency-Key
 * that holds no prepaid credits. Everything else is admitted exactly, as on any plan.
 */
export function leaseable(
  tenant: TenantRecord,
  env: "live" | "test",
  billable: boolean,
  idempotent: boolean,
) {
  return tenant.admissionMode === "leased" && env === "live" && !idempotent && !(tenant.credits && billable);
}

/** Admits `input` from this isolate's lease of the key; null: admit it exactly. */
export async function admitFromLease(
  env: LeaseEnv,
  ctx: Pick<ExecutionContext, "waitUntil">,
  tenantId: string,
  input: AdmitInput & { config: TenantConfig },
  lifetimeMs: number,
): Promise<AdmitResult | null> {
  const name = `${tenantId}:${input.keyId}`;
  let pool = pools.get(name);
  if (!pool) {
    pool = { name, current: null, retired: [], renewing: null, rate: 0, exactUntil: 0 };
    pools.set(name, pool);
  }
  const ask = { env, ctx, tenantId, input, lifetimeMs };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // A lease still held is used first, even after an `exact` answer: its units are already drawn.
    const taken = take(pool, ask);
    if (taken) return taken;
    if (pool.exactUntil > Date.now()) return null;
    const mine = pool.renewing === null;
    const result = await (pool.renewing ?? renew(pool, ask));
    // Granted, but taken by the requests that waited with this one: the next lease (a renewal may
    // already be on its way) is awaited rather than deciding this request exactly while units sit
    // in a lease no request is left to use — a burst at the quota's end was refused 429 with it
    // not used up.
    if (result.outcome === "granted") continue;
    if (result.outcome === "exact") return null;
    // A window's refusal was for the asking request's cost: another request's is decided exactly.
    if (!mine && (result.outcome === "rate_limited" || result.outcome === "quota_exceeded")) return null;
    return result;
  }
  return null;
}

interface Ask {
  env: LeaseEnv;
  ctx: Pick<ExecutionContext, "waitUntil">;
  tenantId: string;
  input: AdmitInput & { config: TenantConfig };
  lifetimeMs: number;
}

/** The request admitted from the current lease, refused by its allowlist, or null: no usable lease. */
function take(pool: Pool, ask: Ask): AdmitResult | null {
  const lease = pool.current;
  const { cost, clientIp } = ask.input;
  const now = Date.now();
  if (!lease || lease.over || now >= lease.deadline || lease.units - lease.used < cost) return null;
  if (lease.ipAllowlist.length > 0 && !ipAllowed(clientIp ?? "", lease.ipAllowlist))
    return { outcome: "ip_not_allowed" };
  lease.used += cost;
  lease.requests++;
  if (
    !pool.renewing &&
    !lease.last &&
    pool.exactUntil <= now &&
    (lease.units - lease.used <= lease.units * RENEW_LEFT || now >= lease.renewAt)
  )
    renew(pool, ask).catch(() => {});
  return {
    outcome: "admitted",
    limits: headerView(lease, cost),
    leaseToken: null,
    admittedAt: lease.grantedAt,
    creditHold: null,
    ...(lease.pastDue ? { pastDue: lease.pastDue } : {}),
  };
}

/** Stops admitting from the current lease; its report goes with the next call. */
function retire(pool: Pool, now: number): void {
  const lease = pool.current;
  if (!lease) return;
  pool.current = null;
  pool.rate = lease.used / Math.max(1, now - lease.receivedAt);
  pool.retired.push({ leaseId: lease.leaseId, requests: lease.requests, units: lease.used });
}

/** Asks the object for the next lease, settling the retired ones; the one call in flight per pool. */
function renew(pool: Pool, ask: Ask): Promise<LeaseResult> {
  const { env, ctx, tenantId, input, lifetimeMs } = ask;
  const sentAt = Date.now();
  // A lease past its lifetime admits nothing more: its report goes with this call, so the object
  // has its unused units back before it decides. Kept until the answer (as its own timer, late
  // under load, would have it), they were still charged: the asking requests were refused 429
  // with units left over, and what they left unused came back only after they had been answered.
  if (pool.current && (pool.current.over || sentAt >= pool.current.deadline)) retire(pool, sentAt);
  const reports = pool.retired.splice(0);
  const current = pool.current;
  const rate = Math.max(pool.rate, current ? current.used / Math.max(1, sentAt - current.receivedAt) : 0);
  const want = Math.max(MIN_REQUESTS * Math.max(1, input.cost), Math.ceil(rate * lifetimeMs * HEADROOM));
  const asked = askLease(env, tenantId, {
    holder: holderId(),
    keyId: input.keyId,
    keyLimit: input.keyLimit,
    ipAllowlist: input.ipAllowlist ?? [],
    cost: input.cost,
    want,
    lifetimeMs,
    config: input.config,
    settle: reports,
  });
  const done = asked
    .then(
      (result) => {
        const now = Date.now();
        // A window's refusal (or `exact`) is about the next lease: the current one's units are
        // drawn and stay usable to its end. Retired here, they were still charged until its report
        // went back, and requests were refused 429 with the quota not used up. Any other refusal
        // (revoked, suspended…) stops it at once.
        const windowed =
          result.outcome === "rate_limited" ||
          result.outcome === "quota_exceeded" ||
          result.outcome === "exact";
        if (windowed && pool.current) pool.current.last = true;
        else retire(pool, now);
        if (result.outcome === "granted") {
          const life = result.expiresAt - result.grantedAt;
          const { outcome: _, ...lease } = result;
          pool.current = {
            ...lease,
            used: 0,
            requests: 0,
            receivedAt: now,
            deadline: sentAt + life,
            renewAt: sentAt + life * RENEW_AGE,
            over: false,
            last: false,
          };
        } else if (result.outcome === "exact") {
          pool.exactUntil = sentAt + lifetimeMs;
        }
        return result;
      },
      (error: unknown) => {
        pool.retired.unshift(...reports);
        throw error;
      },
    )
    .finally(() => {
      pool.renewing = null;
    });
  pool.renewing = done;
  // A new lease gets its timer; a kept one has its own already.
  ctx.waitUntil(
    done.then(
      (result) =>
        result.outcome === "granted" && pool.current
          ? expire(pool, pool.current, ask)
          : pool.current
            ? undefined
            : forgetIdle(pool, lifetimeMs),
      () => {},
    ),
  );
  return done;
}

/**
 * Ends a lease when its lifetime is over. If no newer lease replaced it (the traffic stopped),
 * returns the reports of every finished lease now, so the ledger does not wait for the next request.
 */
async function expire(pool: Pool, lease: Held, ask: Ask): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, lease.deadline - lease.receivedAt)));
  lease.over = true;
  if (pool.current === lease) retire(pool, Date.now());
  // A newer lease's own timer (or the call in flight) carries the reports.
  if (pool.renewing || pool.current || pool.retired.length === 0) return;
  const reports = pool.retired.splice(0);
  try {
    await returnLeases(ask.env, ask.tenantId, holderId(), reports);
  } catch (error) {
    // Kept for the next call; if none comes, the leases lapse (their units stay charged).
    pool.retired.unshift(...reports);
    log.warn("lease return failed", { tenant_id: ask.tenantId, error: String(error) });
    return;
  }
  forget(pool);
}

/** Drops a pool with nothing in it (no lease, no report, no call), so the map holds only keys in use. */
function forget(pool: Pool): void {
  if (!pool.current && !pool.renewing && pool.retired.length === 0 && pools.get(pool.name) === pool)
    pools.delete(pool.name);
}

/** After an answer without a lease (exact, or a refusal): the pool is dropped once that answer is stale. */
async function forgetIdle(pool: Pool, lifetimeMs: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, lifetimeMs));
  forget(pool);
}

/** The lease's snapshot, plus what this isolate has not used of it (capped at each limit). */
function headerView(lease: Held, cost: number): LimitState {
  const unused = lease.units - lease.used;
  const bucket = (b: BucketState): BucketState => ({
    ...b,
    remaining: Math.min(b.limit, b.remaining + unused),
  });
  const quota = (q: QuotaState | null): QuotaState | null =>
    q && { ...q, remaining: Math.min(q.limit, q.remaining + unused) };
  const { burst, key, daily, monthly } = lease.limits;
  return {
    burst: bucket(burst),
    key: key && bucket(key),
    daily: quota(daily),
    monthly: quota(monthly),
    cost,
  };
}
