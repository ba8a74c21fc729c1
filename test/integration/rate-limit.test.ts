/** Exact limits under concurrency, quotas, per-key limits, headers, and the admission budget. */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parseList } from "structured-headers";
import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../../durable-objects/limits";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { doCalls } from "../../workers/shared/tenant-client";
import { controlledClock } from "../support/clock";
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

/** A bucket that effectively never refills during a test. */
const noRefill = { refillTokens: 1, refillPeriodSeconds: 86_400 };

/** Every test that spends a quota or reads a reset time sets the clock: none depends on when it runs. */
const clock = controlledClock();
const epochSeconds = (iso: string) => Date.parse(iso) / 1000;

async function fire(n: number, path: (i: number) => string, headers: HeadersInit): Promise<Response[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => gateway(path(i), { headers })));
}

describe("rate limits", () => {
  it("admits exactly the burst capacity out of 200 concurrent requests", { timeout: 60_000 }, async () => {
    const t = await seedTenant({ plan: { burstCapacity: 50, ...noRefill } });
    const marker = uniq();
    const responses = await fire(200, (i) => `/v1/${marker}/${i}`, bearer(t.key));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(150);
    expect(await originCalls(marker)).toHaveLength(50);
    const rejected = responses.find((r) => r.status === 429) as Response;
    const body = await rejected.json<{ code: string }>();
    expect(body.code).toBe("rate_limited");
    expect(Number(rejected.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("admits exactly the daily quota out of 200 concurrent requests", { timeout: 60_000 }, async () => {
    clock.set("2027-01-31T18:00:00Z");
    const t = await seedTenant({
      plan: { burstCapacity: 1000, refillTokens: 1000, refillPeriodSeconds: 1, dailyQuota: 30 },
    });
    const marker = uniq();
    const responses = await fire(200, (i) => `/v1/${marker}/${i}`, bearer(t.key));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(30);
    const rejected = responses.filter((r) => r.status === 429);
    expect(rejected).toHaveLength(170);
    expect(await originCalls(marker)).toHaveLength(30);
    const body = await (rejected[0] as Response).json<{ code: string }>();
    expect(body.code).toBe("quota_exceeded");
    // Six hours to UTC midnight.
    expect(new Set(rejected.map((r) => r.headers.get("retry-after")))).toEqual(new Set(["21600"]));
  });

  it("rolls the daily and monthly quotas over at the month's last midnight", async () => {
    clock.set("2027-01-31T23:59:59.000Z");
    const t = await seedTenant({
      plan: { burstCapacity: 100, ...noRefill, dailyQuota: 2, monthlyQuota: 3 },
    });
    expect((await gateway("/v1/jan/1", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/jan/2", { headers: bearer(t.key) })).status).toBe(200);
    clock.set("2027-01-31T23:59:59.900Z");
    const refused = await gateway("/v1/jan/3", { headers: bearer(t.key) });
    expect(refused.status).toBe(429);
    expect((await refused.json<{ code: string }>()).code).toBe("quota_exceeded");
    // 100 ms to midnight: a whole second, never 0.
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.headers.get("x-ratelimit-reset")).toBe(String(epochSeconds("2027-02-01T00:00:00Z")));

    clock.set("2027-02-01T00:00:00.100Z");
    const february = await gateway("/v1/feb/1", { headers: bearer(t.key) });
    expect(february.status).toBe(200);
    const current = parseList(february.headers.get("ratelimit") as string);
    expect(
      Object.fromEntries(current.map(([name, params]) => [name, Object.fromEntries(params)])),
    ).toMatchObject({
      daily: { r: 1, t: 86_400 },
      monthly: { r: 2, t: 28 * 86_400 },
    });
  });

  it("charges the route's cost in units against every window", async () => {
    const t = await seedTenant({
      plan: { burstCapacity: 12, ...noRefill, entitlements: ["api", "reports"] },
    });
    // /v1/reports/ costs 5: two fit in 12, the third does not; a cost-1 call still fits.
    expect((await gateway("/v1/reports/a", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/reports/b", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/reports/c", { headers: bearer(t.key) })).status).toBe(429);
    const small = await gateway("/v1/small", { headers: bearer(t.key) });
    expect(small.status).toBe(200);
    expect(small.headers.get("x-ratelimit-burstremaining")).toBe("1");
  });

  it("applies a key's own, tighter bucket on top of the tenant's", { timeout: 30_000 }, async () => {
    const t = await seedTenant({ plan: { burstCapacity: 100, ...noRefill } });
    const tight = await createKey(t.tenantId, { rateLimit: { burstCapacity: 5, ...noRefill } });
    const marker = uniq();
    const responses = await fire(20, (i) => `/v1/${marker}/${i}`, bearer(tight.key));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(5);
    // The tenant's bucket paid for those 5 too; the tenant's other key still has 95.
    const other = await gateway(`/v1/${marker}/other`, { headers: bearer(t.key) });
    expect(other.status).toBe(200);
    expect(other.headers.get("x-ratelimit-burstremaining")).toBe("94");
  });

  it("gives an exact Retry-After: the time until enough tokens are back", async () => {
    for (const refillPeriodSeconds of [10, 3600]) {
      const start = clock.set(Date.now());
      const t = await seedTenant({ plan: { burstCapacity: 2, refillTokens: 1, refillPeriodSeconds } });
      expect((await gateway("/v1/a", { headers: bearer(t.key) })).status).toBe(200);
      expect((await gateway("/v1/b", { headers: bearer(t.key) })).status).toBe(200);
      const limited = await gateway("/v1/c", { headers: bearer(t.key) });
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toBe(String(refillPeriodSeconds));
      // One millisecond early is still early; a client that waits exactly Retry-After is admitted.
      clock.set(start + refillPeriodSeconds * 1000 - 1);
      const early = await gateway("/v1/d", { headers: bearer(t.key) });
      expect(early.status).toBe(429);
      expect(early.headers.get("retry-after")).toBe("1");
      clock.set(start + refillPeriodSeconds * 1000);
      expect((await gateway("/v1/e", { headers: bearer(t.key) })).status).toBe(200);
    }
  });

  it("sends RateLimit headers that parse as RFC 8941 lists, and the X-RateLimit set", async () => {
    clock.set("2027-01-31T23:59:00Z");
    const t = await seedTenant({
      plan: {
        burstCapacity: 100,
        refillTokens: 100,
        refillPeriodSeconds: 60,
        dailyQuota: 1000,
        monthlyQuota: 20000,
      },
    });
    const res = await gateway("/v1/headers", { headers: bearer(t.key) });
    expect(res.status).toBe(200);
    const policy = parseList(res.headers.get("ratelimit-policy") as string);
    expect(policy.map(([name, params]) => [name, Object.fromEntries(params)])).toEqual([
      ["burst", { q: 100, w: 60 }],
      ["daily", { q: 1000, w: 86400 }],
      ["monthly", { q: 20000, w: 2592000 }],
    ]);
    const current = parseList(res.headers.get("ratelimit") as string);
    const byName = Object.fromEntries(current.map(([name, params]) => [name, Object.fromEntries(params)]));
    // One token short at 100 a minute: 1 s to full; a minute to midnight and to February.
    expect(byName).toEqual({
      burst: { r: 99, t: 1 },
      daily: { r: 999, t: 60 },
      monthly: { r: 19999, t: 60 },
    });
    expect(res.headers.get("x-ratelimit-tenant")).toBe(t.slug);
    expect(res.headers.get("x-ratelimit-plan")).toBe(t.plan.name);
    // The bucket (99 left) denies before the daily quota (999 left): the X-RateLimit set says so.
    expect(res.headers.get("x-ratelimit-limit")).toBe("100");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("99");
    expect(res.headers.get("x-ratelimit-reset")).toBe(String(epochSeconds("2027-01-31T23:59:01Z")));
    expect(res.headers.get("x-ratelimit-burstremaining")).toBe("99");
  });

  it("applies a plan change on the next request", async () => {
    clock.set(Date.now());
    const t = await seedTenant({ plan: { burstCapacity: 1, ...noRefill } });
    expect((await gateway("/v1/a", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/b", { headers: bearer(t.key) })).status).toBe(429);
    // A change is versioned by the millisecond it was made: the operator's comes a second later.
    clock.advance(1000);
    await expectJson(await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { burstCapacity: 10 }), 200);
    const after = await gateway("/v1/c", { headers: bearer(t.key) });
    expect(after.status).toBe(200);
    expect(after.headers.get("ratelimit-policy")).toContain('"burst";q=10;');
    clock.advance(1000);
    await expectJson(
      await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { overrides: { dailyQuota: 1 } }),
      200,
    );
    expect((await gateway("/v1/d", { headers: bearer(t.key) })).status).toBe(429);
  });

  it("keeps its state when the object is evicted and restarted", async () => {
    const t = await seedTenant({ plan: { burstCapacity: 3, ...noRefill } });
    expect((await gateway("/v1/a", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/b", { headers: bearer(t.key) })).status).toBe(200);
    await abortAllDurableObjects();
    expect((await gateway("/v1/c", { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway("/v1/d", { headers: bearer(t.key) })).status).toBe(429);
  });
});

describe("X-RateLimit headers describe the window that denies first", () => {
  it("the monthly quota, when it has the fewest left: Remaining 0 means the next request is refused", async () => {
    clock.set("2027-01-31T20:00:00Z");
    const t = await seedTenant({
      plan: { burstCapacity: 100, ...noRefill, dailyQuota: 1000, monthlyQuota: 3 },
    });
    const seen: [string | null, string | null, string | null][] = [];
    for (let i = 0; i < 3; i++) {
      const res = await gateway(`/v1/m/${i}`, { headers: bearer(t.key) });
      expect(res.status).toBe(200);
      seen.push([
        res.headers.get("x-ratelimit-limit"),
        res.headers.get("x-ratelimit-remaining"),
        res.headers.get("x-ratelimit-reset"),
      ]);
    }
    const reset = String(epochSeconds("2027-02-01T00:00:00Z"));
    expect(seen).toEqual([
      ["3", "2", reset],
      ["3", "1", reset],
      ["3", "0", reset],
    ]);
    const refused = await gateway("/v1/m/next", { headers: bearer(t.key) });
    expect(refused.status).toBe(429);
    expect((await refused.json<{ code: string }>()).code).toBe("quota_exceeded");
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(refused.headers.get("x-ratelimit-reset")).toBe(reset);
  });

  it("the key's own bucket, when it is tighter than the tenant's bucket and the quotas", async () => {
    clock.set("2027-01-31T20:00:00Z");
    const t = await seedTenant({ plan: { burstCapacity: 100, ...noRefill, dailyQuota: 1000 } });
    const tight = await createKey(t.tenantId, { rateLimit: { burstCapacity: 2, ...noRefill } });
    const res = await gateway("/v1/k", { headers: bearer(tight.key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-limit")).toBe("2");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("1");
    // A bucket is full again after one refill period per missing token.
    expect(res.headers.get("x-ratelimit-reset")).toBe(String(epochSeconds("2027-02-01T20:00:00Z")));
  });

  it("counts in requests of this cost: a cost-5 route binds on the quota with fewer such requests left", async () => {
    clock.set("2027-01-31T20:00:00Z");
    const t = await seedTenant({
      plan: { burstCapacity: 100, ...noRefill, dailyQuota: 12, entitlements: ["api", "reports"] },
    });
    // After one report: bucket 95 (19 more reports), daily 7 (1 more report) → daily binds.
    const res = await gateway("/v1/reports/r", { headers: bearer(t.key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-limit")).toBe("12");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("7");
  });
});

describe("admission budget", () => {
  it("makes exactly one Durable Object call per admitted request and none for rejected ones", async () => {
    const t = await seedTenant();
    const fenced = await createKey(t.tenantId, { ipAllowlist: ["203.0.113.0/24"] });
    await gateway("/v1/warm", { headers: bearer(t.key) });

    let before = doCalls.count;
    for (let i = 0; i < 10; i++)
      expect((await gateway(`/v1/n${i}`, { headers: bearer(t.key) })).status).toBe(200);
    expect(doCalls.count - before).toBe(10);

    before = doCalls.count;
    await gateway("/v1/x", { headers: bearer("gw_live_nonsense") });
    await gateway("/v1/x", { headers: { ...bearer(fenced.key), "cf-connecting-ip": "198.51.100.1" } });
    await gateway("/v2/not-routed", { headers: bearer(t.key) });
    await gateway("/v1/x");
    expect(doCalls.count - before).toBe(0);
  });
});

describe("windows over time (controlled clock)", () => {
  const at = (iso: string) => Date.parse(iso);
  const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
    keyId: "key_clock",
    keyLimit: null,
    cost: 1,
    config: {
      version: 1,
      status: "active",
      limits: { burstCapacity: 2, refillTokens: 1, refillPeriodSeconds: 60, dailyQuota: 3, monthlyQuota: 4 },
    },
    idempotency: null,
    ...over,
  });

  it("refills by the minute, rolls the day over at UTC midnight and the month on the first", async () => {
    const stub = env.TENANT.getByName(`clock-${uniq()}`);
    const outcomes = await runInDurableObject(stub, (o: TenantLimiter) => {
      const run = (iso: string) => o.decide(input(), at(iso)).outcome;
      return [
        run("2026-11-30T23:58:00Z"), // burst 2→1, day 1, month 1
        run("2026-11-30T23:58:00Z"), // burst 1→0, day 2, month 2
        run("2026-11-30T23:58:59Z"), // burst empty (59 s < 60 s)
        run("2026-11-30T23:59:00Z"), // +1 token after a minute: day 3, month 3
        run("2026-11-30T23:59:30Z"), // no token yet, and the day's quota (3) is used: the longer wait wins
        run("2026-12-01T00:01:00Z"), // new day and new month: fresh quotas; bucket refilled
        run("2026-12-01T00:01:00Z"), // bucket: 2 tokens were back → second one
        run("2026-12-01T00:01:00Z"), // bucket empty
      ];
    });
    expect(outcomes).toEqual([
      "admitted",
      "admitted",
      "rate_limited",
      "admitted",
      "quota_exceeded",
      "admitted",
      "admitted",
      "rate_limited",
    ]);
  });

  it("stops at the daily quota until midnight, and at the monthly quota until the first", async () => {
    const stub = env.TENANT.getByName(`clock-${uniq()}`);
    const results = await runInDurableObject(stub, (o: TenantLimiter) => {
      const big = input({
        config: {
          version: 1,
          status: "active",
          limits: {
            burstCapacity: 100,
            refillTokens: 100,
            refillPeriodSeconds: 1,
            dailyQuota: 3,
            monthlyQuota: 4,
          },
        },
      });
      const run = (iso: string) => o.decide(big, at(iso));
      return [
        run("2026-11-29T10:00:00Z").outcome,
        run("2026-11-29T10:00:00Z").outcome,
        run("2026-11-29T10:00:00Z").outcome,
        run("2026-11-29T23:59:30Z"), // daily quota used up: Retry-After 30 s (to midnight)
        run("2026-11-30T00:00:00Z").outcome, // new day: 4th of the month
        run("2026-11-30T12:00:00Z"), // monthly used up: 12 h to Dec 1st
        run("2026-12-01T00:00:00Z").outcome,
      ];
    });
    expect(results.slice(0, 3)).toEqual(["admitted", "admitted", "admitted"]);
    expect(results[3]).toMatchObject({ outcome: "quota_exceeded", retryAfter: 30 });
    expect(results[4]).toBe("admitted");
    expect(results[5]).toMatchObject({ outcome: "quota_exceeded", retryAfter: 12 * 3600 });
    expect(results[6]).toBe("admitted");
  });

  it("starts an inactive tenant's new period fresh, with no cron", async () => {
    const stub = env.TENANT.getByName(`clock-${uniq()}`);
    const outcomes = await runInDurableObject(stub, (o: TenantLimiter) => {
      const run = (iso: string) => o.decide(input(), at(iso)).outcome;
      return [
        run("2026-01-05T00:00:00Z"),
        run("2026-01-05T01:00:00Z"),
        run("2026-01-05T02:00:00Z"),
        run("2026-01-05T03:00:00Z"),
        run("2026-03-17T09:00:00Z"),
      ];
    });
    expect(outcomes).toEqual(["admitted", "admitted", "admitted", "quota_exceeded", "admitted"]);
  });

  it("decides a call without the config by its own when that is as new, and asks for it — charging nothing — when it is not", async () => {
    const stub = env.TENANT.getByName(`lean-${uniq()}`);
    const t = at("2026-11-30T12:00:00Z");
    const results = await runInDurableObject(stub, (o: TenantLimiter) => {
      const lean = (version: number) =>
        o.decide({ ...input(), config: undefined, configVersion: version }, t);
      return [
        lean(1).outcome, // a new object holds no config
        o.decide(input(), t).outcome, // burst 2 → 1
        lean(1).outcome, // burst 1 → 0, by the stored config
        lean(2).outcome, // the edge has a newer one: asked for, nothing charged
        o.decide(input({ config: { ...(input().config as TenantConfig), version: 2 } }), t).outcome, // empty
      ];
    });
    expect(results).toEqual(["config_needed", "admitted", "admitted", "config_needed", "rate_limited"]);
  });

  it("decides from SQLite again after the object is evicted: the in-memory state is only a copy", async () => {
    const name = `evict-${uniq()}`;
    const t = at("2026-11-30T12:00:00Z");
    const first = await runInDurableObject(env.TENANT.getByName(name), (o: TenantLimiter) =>
      o.decide(input(), t),
    );
    await abortAllDurableObjects();
    const [second, third] = await runInDurableObject(env.TENANT.getByName(name), (o: TenantLimiter) => [
      o.decide({ ...input(), config: undefined, configVersion: 1 }, t),
      o.decide(input(), t),
    ]);
    expect([first.outcome, second?.outcome, third?.outcome]).toEqual([
      "admitted",
      "admitted",
      "rate_limited",
    ]);
  });
});
