/**
 * Lease mode through the real entry and on the tenant object itself: quotas and credits never
 * over under concurrency (several holders at once), revocation and suspension within the lease
 * lifetime (LEASE_MS, 1000 ms here), the ledger equal to what was admitted, and the object-call budget.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { LAPSE_GRACE_MS } from "../../durable-objects/lease";
import type { LeaseInput, LeaseResult, TenantLimiter } from "../../durable-objects/tenant";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName, TenantRecordSchema, tenantKvName } from "../../workers/shared/auth-context";
import { forgetKey, forgetTenant } from "../../workers/shared/key-store";
import { doCalls, tenantConfig } from "../../workers/shared/tenant-client";
import { balance, grant, PREPAID } from "../support/credits";
import {
  admin,
  bearer,
  createKey,
  expectJson,
  gateway,
  originCalls,
  seedTenant,
  uniq,
} from "../support/gateway";
import { captureUsage } from "../support/metering";
import { consoleSession } from "../support/web";

const LEASED = {
  admissionMode: "leased",
  burstCapacity: 1_000_000,
  refillTokens: 1_000_000,
  refillPeriodSeconds: 1,
};
const LIFETIME_MS = 1_000;
const HOUR_MS = 3_600_000;

const stub = (tenantId: string) => env.TENANT.getByName(tenantId);

async function fire(n: number, path: (i: number) => string, headers: HeadersInit): Promise<Response[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => gateway(path(i), { headers })));
}

const ok = (responses: Response[]) => responses.filter((r) => r.status === 200).length;

/** Once every lease of the tenant is settled (renewed or returned when its lifetime ended). */
function settled(tenantId: string) {
  return vi.waitFor(
    async () => {
      const open = await runInDurableObject(
        stub(tenantId),
        (_o: TenantLimiter, state: DurableObjectState) =>
          state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases").one().n,
      );
      if (open > 0) throw new Error(`${open} leases open`);
    },
    { timeout: 10_000, interval: 100 },
  );
}

async function ledgerRequests(tenantId: string): Promise<number> {
  const hours = await stub(tenantId).ledger(0, Date.now() + HOUR_MS);
  return hours.reduce((n, h) => n + h.requests, 0);
}

async function dailyUsed(tenantId: string): Promise<number> {
  return (await stub(tenantId).peek(await configOf(tenantId))).daily.used;
}

async function configOf(tenantId: string) {
  const record = TenantRecordSchema.parse(await env.API_KEYS.get(tenantKvName(tenantId), "json"));
  return tenantConfig(record);
}

describe("lease mode", () => {
  it("is a plan field: read back, projected to the edge, switched off again", async () => {
    const t = await seedTenant({ plan: LEASED });
    const plan = await expectJson<{ admissionMode: string }>(
      await admin("GET", `/admin/v1/plans/${t.plan.id}`),
      200,
    );
    expect(plan.admissionMode).toBe("leased");
    expect((await configOf(t.tenantId)).admissionMode).toBe("leased");
    await expectJson(await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { admissionMode: "exact" }), 200);
    expect((await configOf(t.tenantId)).admissionMode).toBeUndefined();
    const bad = await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { admissionMode: "sometimes" });
    expect(bad.status).toBe(400);
  });

  it("admits from leases at ≤ 0.05 object calls per request, and the ledger counts exactly the admitted", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant({ plan: { ...LEASED, dailyQuota: 100_000 } });
    const marker = uniq();
    let calls = 0;
    let admitted = 0;
    const events = await captureUsage(
      async () => {
        const before = doCalls.count;
        for (let wave = 0; wave < 20; wave++) {
          const responses = await fire(20, (i) => `/v1/${marker}/${wave}-${i}`, bearer(t.key));
          admitted += ok(responses);
          const last = responses.at(-1) as Response;
          expect(last.headers.get("ratelimit-policy")).toBeTruthy();
        }
        calls = doCalls.count - before;
      },
      400,
      t.tenantId,
    );
    expect(admitted).toBe(400);
    expect(calls / admitted).toBeLessThanOrEqual(0.05);
    await settled(t.tenantId);
    const mine = events.filter((e) => e.tenantId === t.tenantId);
    expect(mine).toHaveLength(400);
    expect(await ledgerRequests(t.tenantId)).toBe(400);
    // Per hour too: every event is stamped with its lease's grant time, the hour the ledger counts it in.
    const hours = await stub(t.tenantId).ledger(0, Date.now() + HOUR_MS);
    for (const h of hours) {
      const inHour = mine.filter((e) => Math.floor(Date.parse(e.ts) / HOUR_MS) * HOUR_MS === h.hour);
      expect(inHour).toHaveLength(h.requests);
    }
    // What the leases did not use went back: the quota counts exactly the admitted.
    expect(await dailyUsed(t.tenantId)).toBe(400);
  });

  it("never goes over a quota: concurrent requests through the entry and several holders on the object", {
    timeout: 60_000,
  }, async () => {
    const QUOTA = 60;
    const t = await seedTenant({ plan: { ...LEASED, dailyQuota: QUOTA } });
    const config = await configOf(t.tenantId);
    const marker = uniq();
    const ask = (holder: string, settle: LeaseInput["settle"]): Promise<LeaseResult> =>
      stub(t.tenantId).lease({
        holder,
        keyId: t.keyId,
        keyLimit: null,
        cost: 1,
        want: 4,
        lifetimeMs: LIFETIME_MS,
        config,
        settle,
      });
    // A simulated isolate: asks again and again, using every unit of each lease.
    const holder = async (name: string) => {
      let used = 0;
      let last: LeaseInput["settle"] = [];
      for (let i = 0; i < 8; i++) {
        const result = await ask(name, last);
        if (result.outcome !== "granted") break;
        used += result.units;
        last = [{ leaseId: result.leaseId, requests: result.units, units: result.units }];
      }
      await stub(t.tenantId).returnLeases(name, last);
      return used;
    };
    const [responses, ...holders] = await Promise.all([
      fire(150, (i) => `/v1/${marker}/${i}`, bearer(t.key)),
      holder(`h1-${marker}`),
      holder(`h2-${marker}`),
      holder(`h3-${marker}`),
    ]);
    const byHolders = holders.reduce((a, b) => a + b, 0);
    const first = ok(responses) + byHolders;
    expect(first).toBeLessThanOrEqual(QUOTA);
    expect(await originCalls(marker)).toHaveLength(ok(responses));
    await settled(t.tenantId);
    expect(await dailyUsed(t.tenantId)).toBe(first);
    // What is left is admitted to the unit, and not one more.
    const rest = await fire(QUOTA, (i) => `/v1/${marker}/rest-${i}`, bearer(t.key));
    expect(first + ok(rest)).toBe(QUOTA);
    const refused = rest.find((r) => r.status === 429) as Response;
    expect((await refused.json<{ code: string }>()).code).toBe("quota_exceeded");
    await settled(t.tenantId);
    expect(await dailyUsed(t.tenantId)).toBe(QUOTA);
    expect(await ledgerRequests(t.tenantId)).toBe(QUOTA);
  });

  it("never takes prepaid credits below zero (they are held the exact way)", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant({ plan: { ...PREPAID, ...LEASED } });
    await grant(t.tenantId, 20);
    const responses = await fire(60, (i) => `/v1/${uniq()}/${i}`, bearer(t.key));
    expect(ok(responses)).toBe(20);
    expect(responses.filter((r) => r.status === 402)).toHaveLength(40);
    expect(await balance(t.tenantId)).toBe(0);
  });

  it("refuses a revoked key within the lease lifetime, whatever KV and the isolate cache hold", async () => {
    const t = await seedTenant({ plan: LEASED });
    const hash = await hashKey(t.key);
    const stale = (await env.API_KEYS.get(keyKvName(hash))) as string;
    expect((await gateway("/v1/lease-revoke/before", { headers: bearer(t.key) })).status).toBe(200);
    await expectJson(await admin("DELETE", `/admin/v1/keys/${t.keyId}`), 200);
    await env.API_KEYS.put(keyKvName(hash), stale);
    forgetKey(hash);
    const revokedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, LIFETIME_MS + 50));
    const res = await gateway("/v1/lease-revoke/after", { headers: bearer(t.key) });
    expect(Date.now() - revokedAt).toBeLessThan(LIFETIME_MS + 1_000);
    expect(res.status).toBe(401);
    expect((await res.json<{ detail: string }>()).detail).toMatch(/revoked/);
  });

  it("refuses a suspended tenant within the lease lifetime, with a stale tenant record", async () => {
    const t = await seedTenant({ plan: LEASED });
    const stale = (await env.API_KEYS.get(tenantKvName(t.tenantId))) as string;
    expect((await gateway("/v1/lease-suspend/before", { headers: bearer(t.key) })).status).toBe(200);
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);
    await env.API_KEYS.put(tenantKvName(t.tenantId), stale);
    forgetTenant(t.tenantId);
    await new Promise((resolve) => setTimeout(resolve, LIFETIME_MS + 50));
    const res = await gateway("/v1/lease-suspend/after", { headers: bearer(t.key) });
    expect(res.status).toBe(403);
    expect((await res.json<{ code: string }>()).code).toBe("tenant_suspended");
  });

  it("gives a settled lease's unused tokens back to the tenant's and the key's buckets", async () => {
    const t = await seedTenant({
      plan: { admissionMode: "leased", burstCapacity: 1_000, refillTokens: 1, refillPeriodSeconds: 86_400 },
    });
    const config = await configOf(t.tenantId);
    const keyLimit = { burstCapacity: 2_000, refillTokens: 1, refillPeriodSeconds: 86_400 };
    const key = await createKey(t.tenantId, { rateLimit: keyLimit });
    const input = (settle: LeaseInput["settle"]): LeaseInput => ({
      holder: "isolate-a",
      keyId: key.id,
      keyLimit,
      cost: 1,
      want: 10,
      lifetimeMs: LIFETIME_MS,
      config,
      settle,
    });
    const now = Date.now();
    await runInDurableObject(stub(t.tenantId), (o: TenantLimiter, state: DurableObjectState) => {
      const tokens = (name: string) =>
        state.storage.sql.exec<{ tokens: number }>("SELECT tokens FROM buckets WHERE name = ?", name).one()
          .tokens;
      // 1 % of the tenant's burst of 1,000: a lease of 10, drawn from both buckets.
      const first = o.leaseAt(input([]), now) as Extract<LeaseResult, { outcome: "granted" }>;
      expect(first).toMatchObject({ outcome: "granted", units: 10 });
      expect(tokens("tenant")).toBe(990);
      expect(tokens(`key:${key.id}`)).toBe(1_990);
      // The holder used 4 of them and asks again: 6 come back before the next 10 are drawn.
      const second = o.leaseAt(input([{ leaseId: first.leaseId, requests: 4, units: 4 }]), now);
      expect(second).toMatchObject({ outcome: "granted", units: 10 });
      expect(tokens("tenant")).toBe(986);
      expect(tokens(`key:${key.id}`)).toBe(1_986);
    });
    expect(await ledgerRequests(t.tenantId)).toBe(4);
  });

  it("lets the lease of a holder that died lapse: its units stay charged (under, never over)", async () => {
    const t = await seedTenant({ plan: { ...LEASED, dailyQuota: 50 } });
    const config = await configOf(t.tenantId);
    const input = (holder: string): LeaseInput => ({
      holder,
      keyId: t.keyId,
      keyLimit: null,
      cost: 1,
      want: 20,
      lifetimeMs: LIFETIME_MS,
      config,
      settle: [],
    });
    const now = Date.now();
    await runInDurableObject(stub(t.tenantId), (o: TenantLimiter) => {
      expect(o.leaseAt(input("dead"), now)).toMatchObject({ outcome: "granted", units: 20 });
      // Past its lifetime and the grace for a late report, the next call lapses it.
      expect(o.leaseAt(input("alive"), now + LIFETIME_MS + LAPSE_GRACE_MS)).toMatchObject({
        outcome: "granted",
        units: 20,
      });
    });
    const lapses = await stub(t.tenantId).leaseLapses(0, now + HOUR_MS);
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    expect(lapses).toEqual([{ hour, leases: 1, units: 20 }]);
    expect(await dailyUsed(t.tenantId)).toBe(40);
    expect(await ledgerRequests(t.tenantId)).toBe(0);
    // Reconciliation names the lapse in its hour: what the ledger can no longer count.
    const query = new URLSearchParams({
      from: new Date(hour).toISOString(),
      to: new Date(hour + HOUR_MS).toISOString(),
      tenant: t.tenantId,
    });
    const calls = doCalls.count;
    const reconciled = await expectJson<{ rows: { hour: string; lapsedLeaseUnits: number }[] }>(
      await admin("GET", `/admin/v1/reconciliation?${query}`),
      200,
    );
    // One tenant-object call for the tenant: its ledger and its lapses together.
    expect(doCalls.count - calls).toBe(1);
    expect(reconciled.rows).toEqual([
      expect.objectContaining({ hour: new Date(hour).toISOString(), lapsedLeaseUnits: 20 }),
    ]);
    const day = new Date(hour).toISOString().slice(0, 10);
    const html = await (await consoleSession()).page(
      `/console/reconciliation?day=${day}&tenant=${t.tenantId}`,
    );
    expect(html).toContain("20 units of leases lapsed unreported");
  });
});
