/**
 * Sandbox stays sandbox: test (`gw_test_`) traffic spends its own bucket and quotas (per plan, with
 * defaults), never the live ones, and a test key can create and revoke only test keys.
 */
import { describe, expect, it } from "vitest";
import { controlledClock } from "../support/clock";
import { admin, bearer, createKey, expectJson, gateway, seedTenant } from "../support/gateway";

const noRefill = { refillTokens: 1, refillPeriodSeconds: 86_400 };

/** The daily quotas below must not roll over mid-test: the clock stands still at a chosen instant. */
const clock = controlledClock();

const asKey = (key: string, method: string, path: string, body?: unknown) =>
  gateway(path, {
    method,
    headers: { ...bearer(key), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe("sandbox limits", () => {
  it("spends the plan's sandbox bucket and quotas for test keys, never the live ones", async () => {
    clock.set("2027-01-31T23:59:59.000Z");
    const t = await seedTenant({
      plan: {
        burstCapacity: 100,
        ...noRefill,
        dailyQuota: 3,
        sandboxLimits: { burstCapacity: 2, ...noRefill, dailyQuota: 50 },
      },
    });
    const test = await createKey(t.tenantId, { env: "test" });
    const first = await gateway("/v1/sandbox/1", { headers: bearer(test.key) });
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-policy")).toBe('"burst";q=2;w=172800, "daily";q=50;w=86400');
    expect((await gateway("/v1/sandbox/2", { headers: bearer(test.key) })).status).toBe(200);
    const limited = await gateway("/v1/sandbox/3", { headers: bearer(test.key) });
    expect(limited.status).toBe(429);
    expect((await limited.json<{ code: string }>()).code).toBe("rate_limited");

    // The live bucket and the live daily quota (3) are untouched by the test traffic.
    for (let i = 0; i < 3; i++) {
      const live = await gateway(`/v1/live/${i}`, { headers: bearer(t.key) });
      expect(live.status).toBe(200);
      if (i === 0) expect(live.headers.get("x-ratelimit-burstremaining")).toBe("99");
    }
    const over = await gateway("/v1/live/over", { headers: bearer(t.key) });
    expect(over.status).toBe(429);
    expect((await over.json<{ code: string }>()).code).toBe("quota_exceeded");

    // Each key's usage API reports its own side.
    const sandboxUsage = await expectJson<{ daily: { used: number; limit: number } }>(
      await gateway("/gateway/v1/usage", { headers: bearer(test.key) }),
      200,
    );
    expect(sandboxUsage.daily).toMatchObject({ used: 2, limit: 50 });
    const liveUsage = await expectJson<{ daily: { used: number; limit: number } }>(
      await gateway("/gateway/v1/usage", { headers: bearer(t.key) }),
      200,
    );
    expect(liveUsage.daily).toMatchObject({ used: 3, limit: 3 });
  });

  it("holds test keys of a plan without sandbox limits to the live numbers, counted apart", async () => {
    clock.set("2027-01-31T23:59:59.000Z");
    const t = await seedTenant({ plan: { burstCapacity: 10, ...noRefill, dailyQuota: 2 } });
    const test = await createKey(t.tenantId, { env: "test" });
    const res = await gateway("/v1/defaults/1", { headers: bearer(test.key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-policy")).toBe('"burst";q=10;w=864000, "daily";q=2;w=86400');
    expect((await gateway("/v1/defaults/2", { headers: bearer(test.key) })).status).toBe(200);
    expect((await gateway("/v1/defaults/3", { headers: bearer(test.key) })).status).toBe(429);
    // The live side has its whole quota and bucket.
    const live = await gateway("/v1/defaults/live", { headers: bearer(t.key) });
    expect(live.status).toBe(200);
    expect(live.headers.get("x-ratelimit-burstremaining")).toBe("9");
    expect((await gateway("/v1/defaults/live2", { headers: bearer(t.key) })).status).toBe(200);
  });

  it("exposes sandbox limits on the admin plans API; a change applies on the next request", async () => {
    const t = await seedTenant({ plan: { sandboxLimits: { burstCapacity: 1, ...noRefill } } });
    const plan = await expectJson<{ sandboxLimits: unknown }>(
      await admin("GET", `/admin/v1/plans/${t.plan.id}`),
      200,
    );
    expect(plan.sandboxLimits).toEqual({ burstCapacity: 1, ...noRefill });
    const test = await createKey(t.tenantId, { env: "test" });
    expect((await gateway("/v1/a", { headers: bearer(test.key) })).status).toBe(200);
    expect((await gateway("/v1/b", { headers: bearer(test.key) })).status).toBe(429);

    const patched = await expectJson<{ sandboxLimits: unknown }>(
      await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, {
        sandboxLimits: { burstCapacity: 5, ...noRefill },
      }),
      200,
    );
    expect(patched.sandboxLimits).toEqual({ burstCapacity: 5, ...noRefill });
    expect((await gateway("/v1/c", { headers: bearer(test.key) })).status).toBe(200);

    const bad = await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { sandboxLimits: { burstCapacity: 0 } });
    expect(bad.status).toBe(400);
    expect((await bad.json<{ code: string }>()).code).toBe("validation_failed");
  });
});

describe("test keys act only on the sandbox", () => {
  it("lets an admin test key create and revoke test keys, never live ones", async () => {
    const t = await seedTenant();
    const testAdmin = await createKey(t.tenantId, { env: "test", role: "admin" });
    const liveMember = await createKey(t.tenantId, { env: "live" });

    const live = await asKey(testAdmin.key, "POST", "/gateway/v1/keys", { env: "live" });
    expect(live.status).toBe(403);
    expect(await live.json()).toEqual({
      type: "https://gateway.dev/problems/forbidden",
      title: "Forbidden",
      status: 403,
      detail: "A test key can create only test keys.",
      code: "forbidden",
      request_id: live.headers.get("x-request-id"),
    });
    // `env` defaults to live: refused too.
    expect((await asKey(testAdmin.key, "POST", "/gateway/v1/keys", {})).status).toBe(403);

    const created = await expectJson<{ id: string; env: string; role: string }>(
      await asKey(testAdmin.key, "POST", "/gateway/v1/keys", { env: "test", role: "admin" }),
      201,
    );
    expect(created).toMatchObject({ env: "test", role: "admin" });

    const revokeLive = await asKey(testAdmin.key, "DELETE", `/gateway/v1/keys/${liveMember.id}`);
    expect(revokeLive.status).toBe(403);
    expect((await revokeLive.json<{ detail: string }>()).detail).toBe(
      "A test key can revoke only test keys.",
    );
    expect((await gateway("/v1/still-live", { headers: bearer(liveMember.key) })).status).toBe(200);

    await expectJson(await asKey(testAdmin.key, "DELETE", `/gateway/v1/keys/${created.id}`), 200);
    // A live admin key still manages both.
    await expectJson(await asKey(t.key, "POST", "/gateway/v1/keys", { env: "live" }), 201);
    await expectJson(await asKey(t.key, "DELETE", `/gateway/v1/keys/${liveMember.id}`), 200);
  });
});
