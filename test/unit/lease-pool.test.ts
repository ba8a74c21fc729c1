/**
 * Lease mode, the isolate's side (workers/edge/lease-pool.ts), against a stand-in tenant object
 * that keeps a quota the way durable-objects/lease.ts does: a grant charges its units at once, a
 * report gives back what its lease did not use.
 */
import { describe, expect, it } from "vitest";
import type { AdmitInput } from "../../durable-objects/admission";
import type { LeaseInput, LeaseReport, LeaseResult } from "../../durable-objects/lease";
import type { LimitState, TenantConfig } from "../../durable-objects/limits";
import { admitFromLease } from "../../workers/edge/lease-pool";

const config: TenantConfig = {
  version: 1,
  status: "active",
  admissionMode: "leased",
  limits: {
    burstCapacity: 1_000_000,
    refillTokens: 1_000_000,
    refillPeriodSeconds: 1,
    dailyQuota: null,
    monthlyQuota: null,
  },
};

/** A tenant object with `quota` units: grants up to what is left, settles every report first. */
function tenantObject(quota: number, lifetimeMs: number, o: { exactWhenShort?: boolean } = {}) {
  let left = quota;
  let next = 0;
  const held = new Map<string, number>();
  const settle = (reports: LeaseReport[]) => {
    for (const r of reports) {
      left += (held.get(r.leaseId) ?? 0) - r.units;
      held.delete(r.leaseId);
    }
  };
  const limits: LimitState = {
    burst: { limit: 1_000_000, windowSeconds: 1, remaining: 1_000_000, resetSeconds: 0 },
    key: null,
    daily: null,
    monthly: null,
    cost: 1,
  };
  const stub = {
    async lease(input: LeaseInput): Promise<LeaseResult> {
      settle(input.settle);
      if (left < input.cost) return { outcome: "quota_exceeded", retryAfter: 60, limits };
      // As the object answers when what is left is too little to be worth a lease.
      if (o.exactWhenShort && left < input.want) return { outcome: "exact" };
      const units = Math.min(input.want, left);
      left -= units;
      const leaseId = `lease-${++next}`;
      held.set(leaseId, units);
      const grantedAt = Date.now();
      return {
        outcome: "granted",
        leaseId,
        units,
        grantedAt,
        expiresAt: grantedAt + lifetimeMs,
        limits,
        ipAllowlist: [],
      };
    },
    async returnLeases(_holder: string, reports: LeaseReport[]): Promise<void> {
      settle(reports);
    },
  };
  /** A request decided exactly (no lease): admitted while a unit is left. */
  const exact = () => {
    if (left < 1) return false;
    left--;
    return true;
  };
  return { env: { TENANT: { getByName: () => stub } } as never, left: () => left, exact };
}

const input = (keyId: string): AdmitInput & { config: TenantConfig } => ({
  keyId,
  keyLimit: null,
  cost: 1,
  config,
  idempotency: null,
});
const ctx = { waitUntil: () => {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("lease pool", () => {
  it("reports a lease past its lifetime with the next ask, so its unused units admit the requests that asked", async () => {
    const LIFETIME = 50;
    const object = tenantObject(16, LIFETIME);
    // Runs at the lease's deadline, before the lease's own timer (same time, set later): a request
    // arriving after the lifetime, before the isolate got round to returning the lease.
    const atDeadline = sleep(LIFETIME);
    for (let i = 0; i < 5; i++)
      expect((await admitFromLease(object.env, ctx, "ten_a", input("key_a"), LIFETIME))?.outcome).toBe(
        "admitted",
      );
    expect(object.left()).toBe(0); // the first lease drew all 16 (a first ask is for 16)
    await atDeadline;
    // 11 units are unused: the next request gets them, not a 429.
    const next = await admitFromLease(object.env, ctx, "ten_a", input("key_a"), LIFETIME);
    expect(next?.outcome).toBe("admitted");
    let admitted = 6;
    for (let i = 0; i < 30; i++)
      if ((await admitFromLease(object.env, ctx, "ten_a", input("key_a"), LIFETIME))?.outcome === "admitted")
        admitted++;
    expect(admitted).toBe(16);
  });

  it("admits a burst at the quota's end to the unit: waiting requests take the next lease, not an exact 429", async () => {
    const object = tenantObject(20, 5_000);
    // 30 requests at once: the first lease draws 16 of the 20, a renewal the last 4 — the requests
    // that waited on the first lease and found it taken wait for that one too.
    const results = await Promise.all(
      Array.from({ length: 30 }, () => admitFromLease(object.env, ctx, "ten_b", input("key_b"), 5_000)),
    );
    let admitted = 0;
    for (const r of results) if (r === null ? object.exact() : r.outcome === "admitted") admitted++;
    expect(admitted).toBe(20);
    expect(object.left()).toBe(0);
  });

  it("keeps using a lease whose renewal was answered `exact`: its units are drawn, not stranded", async () => {
    const object = tenantObject(20, 5_000, { exactWhenShort: true });
    let admitted = 0;
    // The first lease draws 16 of the 20; its renewal (a quarter left) finds 4, too few for a lease,
    // and is told `exact`: the lease's last 4 and then the quota's last 4 are still admitted.
    for (let i = 0; i < 30; i++) {
      const r = await admitFromLease(object.env, ctx, "ten_c", input("key_c"), 5_000);
      if (r === null ? object.exact() : r.outcome === "admitted") admitted++;
      await sleep(0);
    }
    expect(admitted).toBe(20);
    expect(object.left()).toBe(0);
  });
});
