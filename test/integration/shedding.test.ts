/**
 * Fair shedding: when a route's origin degrades, the tenants over their fair share of it get 503
 * `origin_overloaded` with Retry-After (not billed, the origin not called), while tenants within
 * their share are served. The health signal is driven by the test origin itself: fast responses set
 * the baseline, `/slow` ones degrade the route. Each test has its own route (vitest.config.ts), and
 * SHEDDING is on for these requests only (it is off for the rest of the suite).
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { routeShedState } from "../../workers/edge/shed";
import worker from "../../workers/index";
import { doCalls } from "../../workers/shared/tenant-client";
import { BASE, bearer, originCalls, seedTenant, uniq } from "../support/gateway";
import { captureUsage } from "../support/metering";

const shedding = { ...env, SHEDDING: "on" } as never;
const pending: Promise<void>[] = [];

/** A request through the real entry with SHEDDING=on; its waitUntil work is awaited by `settle`. */
async function call(path: string, key: string, vars = shedding): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, { headers: bearer(key) }), vars, ctx as never);
  // Read whole, as a client would: the request's waitUntil work ends with its bodies.
  const body = await res.arrayBuffer();
  pending.push(waitOnExecutionContext(ctx));
  return new Response(body, res);
}

/** Waits for every request's waitUntil work (usage events, slot releases). */
async function settle(): Promise<void> {
  await Promise.all(pending.splice(0));
}

/** Concurrent slow requests that degrade a route: the limit drops to about this many (the concurrency seen). */
const DEGRADING = 12;

/**
 * Teaches `route` its origin's baseline with fast responses, then degrades it with slow ones.
 * Answers the limit (whole requests) the route's health has learnt.
 */
async function degrade(route: string, key: string): Promise<number> {
  for (let i = 0; i < 12; i++) expect((await call(`${route}warm-${i}`, key)).status).toBe(200);
  const { health } = routeShedState(route);
  expect(health.degraded(Date.now())).toBe(false);
  const slow = await Promise.all(
    Array.from({ length: DEGRADING }, (_, i) => call(`${route}${uniq()}/slow?ms=300&i=${i}`, key)),
  );
  expect(slow.map((r) => r.status)).toEqual(Array(DEGRADING).fill(200));
  expect(health.degraded(Date.now())).toBe(true);
  await settle();
  return Math.floor(health.limit);
}

/**
 * Marks `tenantId` as holding one request at the route's origin in this isolate (a tenant active on
 * the route, as another request of it would), so a flooder is not alone there. Returns the undo.
 */
function active(route: string, tenantId: string): () => void {
  const { tenants } = routeShedState(route);
  tenants.start(tenantId, Date.now());
  return () => tenants.end(tenantId, 0, Date.now());
}

/** Starts `count` requests to the origin's `/slow` (held `ms`) at once; waits until `shed` of them are refused. */
async function flood(route: string, key: string, o: { count: number; shed: number; ms: number }) {
  const marker = uniq();
  const statuses: number[] = [];
  const responses = Array.from({ length: o.count }, (_, i) =>
    call(`${route}${marker}/slow?ms=${o.ms}&i=${i}`, key).then((res) => {
      statuses.push(res.status);
      return res;
    }),
  );
  await vi.waitFor(
    () => {
      if (statuses.filter((s) => s === 503).length < o.shed) throw new Error(`${statuses.length} answered`);
    },
    { timeout: 5_000 },
  );
  return { marker, done: Promise.all(responses) };
}

describe("fair shedding", () => {
  it("sheds a flooding tenant with 503 origin_overloaded, unbilled and never at the origin, while a small tenant is served", async () => {
    const route = "/v1/shed-a/";
    const [flooder, small] = await Promise.all([seedTenant(), seedTenant()]);
    // The small tenant's key is warm in the isolate (on another route: this one has not seen it), so
    // its request races only in the shedding step.
    expect((await call("/v1/hello", small.key)).status).toBe(200);

    // Healthy: one object call per request, no slot. (The flooder's own traffic degrades the route:
    // the small tenant then wants no more of it than it holds.)
    let before = doCalls.count;
    const limit = await degrade(route, flooder.key);
    expect(doCalls.count - before).toBe(12 + DEGRADING);

    const from = Date.now();
    const count = limit * 2 + 4;
    // The small tenant is active on the route (one request at the origin): the flooder is not alone.
    const bystander = active(route, small.tenantId);
    const share = limit - 1;
    let responses: Response[] = [];
    const logged: string[] = [];
    for (const level of ["warn", "error"] as const)
      vi.spyOn(console, level).mockImplementation((line: string) => logged.push(`${level} ${line}`));
    const events = await captureUsage(
      async () => {
        const { marker, done } = await flood(route, flooder.key, { count, shed: count - share, ms: 2_000 });
        // The small tenant, within its share, is served while the flooder is over it: with a slot,
        // released after the response (one more object call).
        before = doCalls.count;
        const served = await call(`${route}${uniq()}`, small.key);
        expect(served.status).toBe(200);
        await settle();
        expect(doCalls.count - before).toBe(2);

        responses = await done;
        // The origin saw the admitted requests only.
        expect(await originCalls(marker)).toHaveLength(share);
        await settle();
      },
      share,
      flooder.tenantId,
    );
    vi.restoreAllMocks();
    const shed = responses.filter((r) => r.status === 503);
    const admitted = responses.filter((r) => r.status === 200);
    expect(shed).toHaveLength(count - share);
    // Each shed request's log line is a warning: shedding is the gateway working, not failing.
    const shedLines = logged.filter(
      (l) => l.includes('"msg":"request"') && l.includes('"code":"origin_overloaded"'),
    );
    expect(shedLines).toHaveLength(count - share);
    expect(shedLines.every((l) => l.startsWith("warn "))).toBe(true);
    expect(admitted).toHaveLength(share);
    const problem = (await shed[0]?.json()) as Record<string, unknown>;
    expect(problem).toEqual({
      type: "https://gateway.dev/problems/origin_overloaded",
      title: "Origin overloaded",
      status: 503,
      detail: `The origin of ${route} is overloaded and this tenant already has ${share} requests there, its fair share. Retry in 1 s.`,
      code: "origin_overloaded",
      request_id: shed[0]?.headers.get("x-request-id"),
    });
    expect(shed[0]?.headers.get("content-type")).toBe("application/problem+json");
    expect(shed.every((r) => r.headers.get("retry-after") === "1")).toBe(true);

    // Billed: the admitted requests only, in the usage events and in the tenant object's ledger.
    const metered = new Set(events.map((e) => e.id));
    expect(admitted.every((r) => metered.has(r.headers.get("x-request-id") ?? ""))).toBe(true);
    expect(shed.some((r) => metered.has(r.headers.get("x-request-id") ?? ""))).toBe(false);
    const hours = await env.TENANT.getByName(flooder.tenantId).ledger(
      from - 3_600_000,
      Date.now() + 3_600_000,
    );
    expect(hours.reduce((n, h) => n + h.requests, 0)).toBe(12 + DEGRADING + share);
    bystander();

    // Back under its share (its requests done), the flooder is served again on the still-degraded route.
    expect(routeShedState(route).health.degraded(Date.now())).toBe(true);
    expect((await call(`${route}${uniq()}`, flooder.key)).status).toBe(200);

    await settle();

    // With SHEDDING=off, the same flood all goes to the struggling origin.
    const off = { ...env, SHEDDING: "off" } as never;
    const unshed = await Promise.all(
      Array.from({ length: count }, (_, i) => call(`${route}${uniq()}/slow?ms=200&i=${i}`, flooder.key, off)),
    );
    expect(unshed.map((r) => r.status)).toEqual(Array(count).fill(200));
    await settle();
  });

  it("never sheds a tenant alone at the route, however degraded: nobody to be fair to", async () => {
    const route = "/v1/shed-c/";
    const tenant = await seedTenant();
    const limit = await degrade(route, tenant.key);
    const count = limit * 2 + 4;
    const alone = await Promise.all(
      Array.from({ length: count }, (_, i) => call(`${route}${uniq()}/slow?ms=200&i=${i}`, tenant.key)),
    );
    expect(routeShedState(route).health.degraded(Date.now())).toBe(true);
    expect(alone.map((r) => r.status)).toEqual(Array(count).fill(200));
    await settle();
  });

  it("sheds the tenant most over its share first, and serves tenants within theirs past the limit", async () => {
    const route = "/v1/shed-b/";
    const [big, middle, small] = await Promise.all([seedTenant(), seedTenant(), seedTenant()]);
    // Keys warm on another route: this one has not seen the middle and small tenants.
    for (const t of [middle, small]) expect((await call("/v1/hello", t.key)).status).toBe(200);
    // The big tenant's own traffic degrades the route.
    const limit = await degrade(route, big.key);
    expect(limit).toBeGreaterThanOrEqual(6);

    // With the small tenant active (one request at the origin), the big one takes the rest of the limit…
    const bystander = active(route, small.tenantId);
    const first = await flood(route, big.key, { count: limit + 3, shed: 4, ms: 2_000 });
    // …a middle tenant still gets up to half the limit, although the route is already full…
    const half = Math.floor(limit / 2);
    const middleMarker = uniq();
    const middleRequests = Array.from({ length: half - 1 }, (_, i) =>
      call(`${route}${middleMarker}/slow?ms=1000&i=${i}`, middle.key),
    );
    await vi.waitFor(async () => expect(await originCalls(middleMarker)).toHaveLength(half - 1), {
      timeout: 5_000,
    });
    // …and the big tenant, furthest over its share, is the one refused.
    const again = await call(`${route}${uniq()}`, big.key);
    expect(again.status).toBe(503);
    expect(((await again.json()) as { code: string }).code).toBe("origin_overloaded");
    expect((await call(`${route}${uniq()}`, small.key)).status).toBe(200);
    expect((await Promise.all(middleRequests)).map((r) => r.status)).toEqual(Array(half - 1).fill(200));
    const statuses = (await first.done).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(limit - 1);
    bystander();
    await settle();

    // The tenant object holds a tenant to its share across isolates: with slots taken elsewhere
    // (another isolate, stood in for here), this isolate's request is refused by the object, unbilled.
    expect(routeShedState(route).health.degraded(Date.now())).toBe(true);
    const other = active(route, middle.tenantId);
    await runInDurableObject(env.TENANT.getByName(small.tenantId), (o: TenantLimiter) => {
      for (let i = 0; i < limit; i++)
        o.decide(
          {
            keyId: small.keyId,
            keyLimit: null,
            cost: 1,
            // Older than what the object holds: its own config applies.
            config: {
              version: 0,
              status: "active",
              limits: {
                burstCapacity: 1000,
                refillTokens: 1000,
                refillPeriodSeconds: 1,
                dailyQuota: null,
                monthlyQuota: null,
              },
            },
            idempotency: null,
            slot: { route, max: limit, leaseMs: 60_000 },
          },
          Date.now(),
        );
    });
    const marker = uniq();
    const refused = await call(`${route}${marker}`, small.key);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({
      code: "origin_overloaded",
      detail: expect.stringContaining(`already has ${limit} requests there`),
    });
    expect(await originCalls(marker)).toHaveLength(0);
    other();
    await settle();
  });
});

describe("in-flight slots in the tenant object", () => {
  const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
    keyId: "key_slots",
    keyLimit: null,
    cost: 1,
    config: {
      version: 1,
      status: "active",
      limits: {
        burstCapacity: 10,
        refillTokens: 1,
        refillPeriodSeconds: 3600,
        dailyQuota: null,
        monthlyQuota: null,
      },
    },
    idempotency: null,
    ...over,
  });
  const slot = { route: "/v1/", max: 2, leaseMs: 1_000 };

  it("refuses a request over its share before charging anything, and takes it again once a slot is released or lapses", async () => {
    const stub = env.TENANT.getByName(`slots-${uniq()}`);
    const results = await runInDurableObject(stub, async (o: TenantLimiter) => {
      const t = 1_800_000_000_000;
      const a = o.decide(input({ slot }), t);
      const b = o.decide(input({ slot }), t);
      const refused = o.decide(input({ slot }), t);
      // Without a slot (the route healthy), nothing is counted.
      const healthy = o.decide(input(), t);
      const released = a.outcome === "admitted" && a.slotId ? await o.releaseSlot("/v1/", a.slotId) : null;
      const releasedTwice =
        a.outcome === "admitted" && a.slotId ? await o.releaseSlot("/v1/", a.slotId) : null;
      const afterRelease = o.decide(input({ slot }), t);
      const stillFull = o.decide(input({ slot }), t + 999);
      const afterLapse = o.decide(input({ slot }), t + 1_000);
      return { a, b, refused, healthy, released, releasedTwice, afterRelease, stillFull, afterLapse };
    });
    expect(results.a).toMatchObject({ outcome: "admitted", slotId: expect.any(String) });
    expect(results.b).toMatchObject({ outcome: "admitted", slotId: expect.any(String) });
    expect(results.refused).toEqual({ outcome: "overloaded", held: 2 });
    // The refused request spent no token: the next admitted one takes the third of ten.
    expect(results.healthy).toMatchObject({ outcome: "admitted", limits: { burst: { remaining: 7 } } });
    expect(results.healthy).not.toHaveProperty("slotId");
    expect([results.released, results.releasedTwice]).toEqual([true, false]);
    expect(results.afterRelease.outcome).toBe("admitted");
    expect(results.stillFull).toEqual({ outcome: "overloaded", held: 2 });
    expect(results.afterLapse.outcome).toBe("admitted");
  });
});
