/** Prepaid credits in the pure admission decision: who spends credits, all or nothing, never below zero. */
import { describe, expect, it } from "vitest";
import { type AdmissionStore, type AdmitInput, decideAdmission } from "../../durable-objects/admission";
import { balanceAfterGrant, creditCost, creditsExhaustedDetail } from "../../durable-objects/credits";
import type { TenantConfig } from "../../durable-objects/limits";
import type { QuotaUsage } from "../../durable-objects/quota";
import type { BucketState } from "../../durable-objects/token-bucket";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const HOLD_MS = 90_000;

const prepaid: TenantConfig = {
  version: 1,
  status: "active",
  limits: {
    burstCapacity: 1000,
    refillTokens: 1,
    refillPeriodSeconds: 1,
    dailyQuota: null,
    monthlyQuota: null,
  },
  credits: true,
};

const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  keyId: "key_a",
  keyLimit: null,
  cost: 1,
  config: prepaid,
  idempotency: null,
  creditHoldMs: HOLD_MS,
  ...over,
});

/** A store holding `balance` credits that applies each admitted decision's writes, as the shell does. */
function memory(balance: number) {
  const buckets = new Map<string, BucketState>();
  const quotas = new Map<string, QuotaUsage>();
  const state = { balance };
  const store: AdmissionStore = {
    key: () => null,
    bucket: (name) => buckets.get(name) ?? null,
    quota: (name) => quotas.get(name) ?? null,
    idempotency: () => null,
    creditBalance: () => state.balance,
  };
  const run = (i: AdmitInput, cfg: TenantConfig = i.config as TenantConfig) => {
    const d = decideAdmission(i, cfg, store, NOW);
    if (d.outcome === "admitted") {
      for (const b of d.writes.buckets) buckets.set(b.name, b.state);
      for (const q of d.writes.quotas) quotas.set(q.name, q.usage);
      if (d.writes.creditHold) state.balance -= d.writes.creditHold.units;
    }
    return d;
  };
  return { state, run, quotas };
}

describe("credits (pure)", () => {
  it("holds the cost of each request until it no longer fits, then refuses with the balance and cost", () => {
    const m = memory(7);
    expect(m.run(input({ cost: 5 }))).toMatchObject({
      outcome: "admitted",
      writes: { creditHold: { units: 5, expiresAt: NOW + HOLD_MS } },
    });
    expect(m.state.balance).toBe(2);
    expect(m.run(input({ cost: 5 }))).toMatchObject({ outcome: "credits_exhausted", balance: 2, cost: 5 });
    expect(m.run(input({ cost: 2 })).outcome).toBe("admitted");
    expect(m.state.balance).toBe(0);
    expect(m.run(input({ cost: 1 }))).toMatchObject({ outcome: "credits_exhausted", balance: 0, cost: 1 });
  });

  it("a refused request spends no window: the quotas count only what was admitted", () => {
    const m = memory(1);
    m.run(input());
    m.run(input());
    expect(m.quotas.get("daily")?.used).toBe(1);
  });

  it("test keys, the tenant API, non-billable routes and non-prepaid tenants never touch credits", () => {
    const m = memory(0);
    expect(m.run(input({ env: "test" }))).toMatchObject({
      outcome: "admitted",
      writes: { creditHold: null },
    });
    expect(m.run(input({ door: "manage" }))).toMatchObject({
      outcome: "admitted",
      writes: { creditHold: null },
    });
    const { creditHoldMs: _, ...nonBillable } = input();
    expect(m.run(nonBillable)).toMatchObject({ outcome: "admitted", writes: { creditHold: null } });
    const metered = { ...prepaid, credits: false };
    expect(m.run(input({ config: metered }), metered)).toMatchObject({
      outcome: "admitted",
      writes: { creditHold: null },
    });
    expect(m.state.balance).toBe(0);
  });

  it("a rate limit answers before credits: a 429 is not reported as a 402", () => {
    const tight = { ...prepaid, limits: { ...prepaid.limits, burstCapacity: 1, refillPeriodSeconds: 3600 } };
    const m = memory(0);
    expect(m.run(input({ config: tight }), tight).outcome).toBe("credits_exhausted");
    const m2 = memory(5);
    m2.run(input({ config: tight }), tight);
    expect(m2.run(input({ config: tight }), tight).outcome).toBe("rate_limited");
    expect(m2.state.balance).toBe(4);
  });

  it("creditCost: the route's cost for a prepaid live proxy request on a billable route, else 0", () => {
    expect(creditCost(prepaid, { door: "proxy", env: "live", cost: 5, creditHoldMs: 1 })).toBe(5);
    expect(creditCost(prepaid, { door: "proxy", env: "test", cost: 5, creditHoldMs: 1 })).toBe(0);
    expect(
      creditCost(
        { ...prepaid, credits: undefined },
        { door: "proxy", env: "live", cost: 5, creditHoldMs: 1 },
      ),
    ).toBe(0);
  });

  it("a grant never takes the balance below zero", () => {
    expect(balanceAfterGrant(10, 5)).toBe(15);
    expect(balanceAfterGrant(10, -10)).toBe(0);
    expect(balanceAfterGrant(10, -11)).toBeNull();
  });

  it("says the balance, the cost and how to top up", () => {
    expect(creditsExhaustedDetail(3, 5)).toBe(
      "The credit balance is 3 units and this request costs 5. Buy credits with POST /gateway/v1/credits/checkout.",
    );
  });
});
