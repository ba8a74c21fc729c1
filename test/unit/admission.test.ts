/** The admission decision as a pure function over an in-memory store: no SQL, no Durable Object. */
import { describe, expect, it } from "vitest";
import {
  type AdmissionStore,
  type AdmitInput,
  decideAdmission,
  mergeKeyState,
  periodUsage,
} from "../../durable-objects/admission";
import type { IdempotencyRecord } from "../../durable-objects/idempotency";
import type { KeyState, TenantConfig } from "../../durable-objects/limits";
import type { QuotaUsage } from "../../durable-objects/quota";
import type { BucketState } from "../../durable-objects/token-bucket";

const NOW = Date.parse("2026-11-30T12:00:00Z");

const config = (over: Partial<TenantConfig> = {}): TenantConfig => ({
  version: 1,
  status: "active",
  limits: { burstCapacity: 10, refillTokens: 1, refillPeriodSeconds: 3600, dailyQuota: 5, monthlyQuota: 100 },
  ...over,
});

const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  keyId: "key_a",
  keyLimit: null,
  cost: 1,
  config: config(),
  idempotency: null,
  ...over,
});

/** An in-memory store that applies the writes of each admitted decision, as the shell does. */
function memory(keys: Record<string, KeyState> = {}) {
  const buckets = new Map<string, BucketState>();
  const quotas = new Map<string, QuotaUsage>();
  const idem = new Map<string, IdempotencyRecord>();
  const ledger: number[] = [];
  const store: AdmissionStore = {
    key: (id) => keys[id] ?? null,
    bucket: (name) => buckets.get(name) ?? null,
    quota: (name) => quotas.get(name) ?? null,
    idempotency: (key) => idem.get(key) ?? null,
    creditBalance: () => 0,
  };
  const run = (i: AdmitInput, cfg = i.config as TenantConfig, now = NOW) => {
    const d = decideAdmission(i, cfg, store, now);
    if (d.outcome === "admitted") {
      for (const b of d.writes.buckets) buckets.set(b.name, b.state);
      for (const q of d.writes.quotas) quotas.set(q.name, q.usage);
      if (d.writes.ledgerUnits !== null) ledger.push(d.writes.ledgerUnits);
    }
    return d;
  };
  return { store, run, buckets, quotas, ledger };
}

describe("admission (pure)", () => {
  it("charges every window or none: a quota refusal leaves the bucket untouched", () => {
    const m = memory();
    for (let i = 0; i < 5; i++) expect(m.run(input()).outcome).toBe("admitted");
    const refused = m.run(input());
    expect(refused).toMatchObject({ outcome: "quota_exceeded", retryAfter: 12 * 3600 });
    expect(m.buckets.get("tenant")?.tokens).toBeCloseTo(5, 0);
    expect(m.quotas.get("daily")).toEqual({ period: "2026-11-30", used: 5 });
    expect(m.ledger).toEqual([1, 1, 1, 1, 1]);
  });

  it("refuses from the object's key record: revoked, expired, outside the allowlist", () => {
    const m = memory({
      key_rev: { version: 1, revokedAt: NOW - 1, expiresAt: null },
      key_exp: { version: 1, revokedAt: null, expiresAt: NOW },
      key_ip: { version: 1, revokedAt: null, expiresAt: null, ipAllowlist: ["203.0.113.0/24"] },
    });
    expect(m.run(input({ keyId: "key_rev" })).outcome).toBe("revoked");
    expect(m.run(input({ keyId: "key_exp" })).outcome).toBe("expired");
    expect(m.run(input({ keyId: "key_ip", clientIp: "198.51.100.7" })).outcome).toBe("ip_not_allowed");
    expect(m.run(input({ keyId: "key_ip" })).outcome).toBe("ip_not_allowed");
    expect(m.run(input({ keyId: "key_ip", clientIp: "203.0.113.9" })).outcome).toBe("admitted");
    // The object's allowlist wins over the edge's (stale, wider) view.
    expect(m.run(input({ keyId: "key_ip", clientIp: "198.51.100.7", ipAllowlist: [] })).outcome).toBe(
      "ip_not_allowed",
    );
    // Without a record, the edge's view applies.
    expect(
      m.run(input({ keyId: "key_new", clientIp: "198.51.100.7", ipAllowlist: ["10.0.0.0/8"] })).outcome,
    ).toBe("ip_not_allowed");
    expect(m.ledger).toHaveLength(1);
  });

  it("uses the object's per-key limit over the edge's", () => {
    const tight = { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 3600 };
    const m = memory({ key_t: { version: 1, revokedAt: null, expiresAt: null, rateLimit: tight } });
    expect(m.run(input({ keyId: "key_t" })).outcome).toBe("admitted");
    expect(m.run(input({ keyId: "key_t" }))).toMatchObject({ outcome: "rate_limited", retryAfter: 3600 });
  });

  it("refuses a suspended tenant at every door, a past-due one only for API traffic and writes", () => {
    const m = memory();
    const suspended = config({ status: "suspended" });
    const pastDue = config({ status: "past_due" });
    expect(m.run(input({ config: suspended })).outcome).toBe("suspended");
    expect(m.run(input({ config: suspended, door: "manage" })).outcome).toBe("suspended");
    expect(m.run(input({ config: pastDue })).outcome).toBe("past_due");
    expect(m.run(input({ config: pastDue, door: "manage", write: true })).outcome).toBe("past_due");
    expect(m.run(input({ config: pastDue, door: "manage" })).outcome).toBe("admitted");
  });

  it("spends only the management bucket at the manage door: no quota, no ledger", () => {
    const m = memory();
    let last = m.run(input({ door: "manage" }));
    for (let i = 1; i < 300; i++) last = m.run(input({ door: "manage" }));
    expect(last.outcome).toBe("admitted");
    expect(m.run(input({ door: "manage" }))).toMatchObject({ outcome: "rate_limited", retryAfter: 1 });
    expect(m.quotas.size).toBe(0);
    expect(m.ledger).toEqual([]);
    expect([...m.buckets.keys()]).toEqual(["manage"]);
    // API traffic is untouched by it.
    expect(m.run(input()).outcome).toBe("admitted");
  });

  it("spends the sandbox windows for test traffic, never the live ones", () => {
    const sandbox = {
      burstCapacity: 3,
      refillTokens: 1,
      refillPeriodSeconds: 3600,
      dailyQuota: 2,
      monthlyQuota: 10,
    };
    const m = memory();
    const test = input({ env: "test", config: config({ sandbox }) });
    expect(m.run(test).outcome).toBe("admitted");
    expect(m.run(test).outcome).toBe("admitted");
    expect(m.run(test).outcome).toBe("quota_exceeded");
    expect(m.quotas.get("sandbox:daily")?.used).toBe(2);
    expect(m.quotas.get("daily")).toBeUndefined();
    expect(m.buckets.get("tenant")).toBeUndefined();
    // Live traffic still has its whole daily quota.
    for (let i = 0; i < 5; i++)
      expect(m.run(input({ config: config({ sandbox }) })).outcome).toBe("admitted");
    expect(periodUsage(config({ sandbox }), "test", m.store, NOW).daily).toMatchObject({ used: 2, limit: 2 });
    expect(periodUsage(config({ sandbox }), "live", m.store, NOW).daily).toMatchObject({ used: 5, limit: 5 });
  });

  it("holds test traffic of a config without sandbox limits to the live numbers, counted apart", () => {
    const m = memory();
    const d = m.run(input({ env: "test" }));
    expect(d.outcome === "admitted" && d.limits.burst.limit).toBe(10);
    for (let i = 1; i < 5; i++) expect(m.run(input({ env: "test" })).outcome).toBe("admitted");
    expect(m.run(input({ env: "test" })).outcome).toBe("quota_exceeded");
    expect(m.quotas.get("daily")).toBeUndefined();
    expect(m.run(input()).outcome).toBe("admitted");
  });

  it("keeps the newest key record, and a revocation for good", () => {
    const live: KeyState = { version: 5, revokedAt: null, expiresAt: 1000, ipAllowlist: ["10.0.0.0/8"] };
    expect(mergeKeyState(live, { version: 6, revokedAt: null, expiresAt: 9000, ipAllowlist: [] })).toEqual({
      version: 6,
      revokedAt: null,
      expiresAt: 9000,
      ipAllowlist: [],
    });
    expect(mergeKeyState(live, { version: 4, revokedAt: null, expiresAt: 9000 })).toEqual(live);
    const revoked = mergeKeyState(live, { version: 6, revokedAt: 500, expiresAt: 1000 });
    expect(mergeKeyState(revoked, { version: 7, revokedAt: null, expiresAt: null }).revokedAt).toBe(500);
    expect(mergeKeyState(revoked, { version: 7, revokedAt: 800, expiresAt: null }).revokedAt).toBe(500);
  });

  it("admits a client that waits exactly its Retry-After, not a millisecond earlier", () => {
    const m = memory();
    const cfg = config({
      limits: {
        burstCapacity: 1,
        refillTokens: 1,
        refillPeriodSeconds: 3600,
        dailyQuota: null,
        monthlyQuota: null,
      },
    });
    expect(m.run(input({ config: cfg }), cfg, NOW).outcome).toBe("admitted");
    expect(m.run(input({ config: cfg }), cfg, NOW)).toMatchObject({
      outcome: "rate_limited",
      retryAfter: 3600,
    });
    expect(m.run(input({ config: cfg }), cfg, NOW + 3_600_000 - 1)).toMatchObject({
      outcome: "rate_limited",
      retryAfter: 1,
    });
    expect(m.run(input({ config: cfg }), cfg, NOW + 3_600_000).outcome).toBe("admitted");
  });

  it("refuses a used-up month until its last midnight, and admits 200 ms later", () => {
    const m = memory();
    const cfg = config({
      limits: {
        burstCapacity: 10,
        refillTokens: 1,
        refillPeriodSeconds: 3600,
        dailyQuota: 5,
        monthlyQuota: 1,
      },
    });
    const at = (iso: string) => m.run(input({ config: cfg }), cfg, Date.parse(iso));
    expect(at("2027-01-31T12:00:00Z").outcome).toBe("admitted");
    expect(at("2027-01-31T12:00:00Z")).toMatchObject({ outcome: "quota_exceeded", retryAfter: 12 * 3600 });
    expect(at("2027-01-31T23:59:59.900Z")).toMatchObject({ outcome: "quota_exceeded", retryAfter: 1 });
    expect(at("2027-02-01T00:00:00.100Z").outcome).toBe("admitted");
    expect(m.quotas.get("daily")).toEqual({ period: "2027-02-01", used: 1 });
    expect(m.quotas.get("monthly")).toEqual({ period: "2027-02", used: 1 });
  });
});
