/**
 * Who uses a route's origin from this isolate, for fair shedding (workers/edge/shed.ts): each
 * tenant's requests at the origin now and its typical concurrency there.
 *
 * - Held: requests between `start` and `end`.
 * - Typical concurrency: the time its requests spent at the origin, decayed exponentially with
 *   USE_DECAY_MS, divided by USE_DECAY_MS (Little's law over a sliding window: a tenant sending 2.5
 *   requests a second that take 120 ms each holds about 0.3). It is what a tenant between its
 *   requests is likely to want at any moment, so a flooder's share leaves room for it.
 * - Alone: no other tenant holds a request here. (Not "nor sent one lately": a tenant hammering the
 *   route just after another, in an isolate whose own CPU is saturated — which reads as a degraded
 *   origin — was then shed instead of rate-limited, 3 of its 200 admitted in the bench's
 *   token-bucket run.)
 *
 * A tenant is forgotten once it holds nothing and has been quiet for FORGET_AFTER_MS (by then its
 * typical concurrency has decayed to under 1 % of what it was); the sweep runs every SWEEP_EVERY ends.
 */

/** Time constant of the decay of a tenant's time at the origin. */
export const USE_DECAY_MS = 2_000;
/** A tenant holding nothing and quiet this long is forgotten. */
export const FORGET_AFTER_MS = 10_000;
const SWEEP_EVERY = 1_024;

interface TenantUse {
  held: number;
  /** Decayed milliseconds at the origin, as of `at`. */
  busyMs: number;
  /** When `busyMs` was last decayed: its first request's start, then its latest request's end. */
  at: number;
}

export class RouteTenants {
  private readonly uses = new Map<string, TenantUse>();
  private ends = 0;

  /** Requests `tenantId` holds at the origin now. */
  held(tenantId: string): number {
    return this.uses.get(tenantId)?.held ?? 0;
  }

  /** A request of `tenantId` leaves for the origin (its time there is added when it ends). */
  start(tenantId: string, now: number): void {
    const use = this.uses.get(tenantId);
    if (use) use.held++;
    else this.uses.set(tenantId, { held: 1, busyMs: 0, at: now });
  }

  /** A request `start` counted is back, after `originMs` at the origin (0 if it never reached it). */
  end(tenantId: string, originMs: number, now: number): void {
    const use = this.uses.get(tenantId);
    if (use) {
      this.decay(use, now);
      use.held = Math.max(0, use.held - 1);
      use.busyMs += originMs;
    }
    if (++this.ends % SWEEP_EVERY === 0) this.sweep(now);
  }

  /** Whether no tenant but `tenantId` holds a request here. */
  alone(tenantId: string): boolean {
    for (const [id, use] of this.uses) if (id !== tenantId && use.held > 0) return false;
    return true;
  }

  /** What every tenant but `tenantId` wants of the origin now: what it holds, or its typical concurrency if more. */
  othersDemands(tenantId: string, now: number): number[] {
    const demands: number[] = [];
    for (const [id, use] of this.uses) {
      if (id === tenantId) continue;
      const typical = (use.busyMs * Math.exp(-(now - use.at) / USE_DECAY_MS)) / USE_DECAY_MS;
      demands.push(Math.max(use.held, typical));
    }
    return demands;
  }

  /** Tenants known here (the tests check the sweep bounds it). */
  get size(): number {
    return this.uses.size;
  }

  private decay(use: TenantUse, now: number): void {
    if (now > use.at) {
      use.busyMs *= Math.exp(-(now - use.at) / USE_DECAY_MS);
      use.at = now;
    }
  }

  /** Forgets the tenants holding nothing and quiet for FORGET_AFTER_MS. */
  private sweep(now: number): void {
    for (const [id, use] of this.uses)
      if (use.held === 0 && now - use.at >= FORGET_AFTER_MS) this.uses.delete(id);
  }
}
