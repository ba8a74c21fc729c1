/**
 * One door for every tenant-facing request: the tenant API (`/gateway/v1/*`) passes the same checks
 * as the proxy — the tenant object's verdict on the key, tenant status, the IP allowlist — with one
 * Durable Object call, and has its own management bucket. Stale KV records are written back, as
 * another location would still see them, to prove the tenant object decides.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName, tenantKvName } from "../../workers/shared/auth-context";
import { forgetKey, forgetTenant } from "../../workers/shared/key-store";
import { doCalls } from "../../workers/shared/tenant-client";
import { controlledClock } from "../support/clock";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

async function restoreStale(name: string, stale: string | null, forget: () => void) {
  if (stale === null) throw new Error(`no KV record ${name}`);
  await env.API_KEYS.put(name, stale);
  forget();
}

/** Asserts the whole problem+json body. */
async function expectProblem(res: Response, status: number, code: string, title: string, detail: string) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect({ status: res.status, body: await res.json() }).toEqual({
    status,
    body: {
      type: `https://gateway.dev/problems/${code}`,
      title,
      status,
      detail,
      code,
      request_id: res.headers.get("x-request-id"),
    },
  });
}

const asKey = (key: string, method: string, path: string, body?: unknown, headers: HeadersInit = {}) =>
  gateway(path, {
    method,
    headers: { ...bearer(key), "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const clock = controlledClock();

const RANGE = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date().toISOString()}`;

describe("tenant door", () => {
  it("refuses a revoked admin key on the tenant API on the next request, whatever KV and the isolate cache hold", async () => {
    const t = await seedTenant();
    const adminKey = await createKey(t.tenantId, { role: "admin" });
    const hash = await hashKey(adminKey.key);
    const stale = await env.API_KEYS.get(keyKvName(hash));
    expect((await asKey(adminKey.key, "GET", "/gateway/v1/keys")).status).toBe(200);

    await expectJson(await admin("DELETE", `/admin/v1/keys/${adminKey.id}`), 200);
    await restoreStale(keyKvName(hash), stale, () => forgetKey(hash));

    const revoked = "The API key has been revoked.";
    const create = await asKey(adminKey.key, "POST", "/gateway/v1/keys", { env: "live" });
    expect(create.headers.get("www-authenticate")).toBe('Bearer realm="gateway", error="invalid_token"');
    await expectProblem(create, 401, "unauthorized", "Unauthorized", revoked);
    // The stale record is now warm in the isolate cache: still refused, on every endpoint.
    await expectProblem(
      await asKey(adminKey.key, "GET", "/gateway/v1/usage"),
      401,
      "unauthorized",
      "Unauthorized",
      revoked,
    );
    await expectProblem(
      await asKey(adminKey.key, "GET", `/gateway/v1/usage/export?${RANGE}`),
      401,
      "unauthorized",
      "Unauthorized",
      revoked,
    );
    const keys = await expectJson<{ data: { id: string }[] }>(
      await asKey(t.key, "GET", "/gateway/v1/keys"),
      200,
    );
    expect(keys.data).toHaveLength(2); // no key was created
  });

  it("refuses a rotated key on the tenant API once its grace period ends, whatever KV says", async () => {
    const t = await seedTenant();
    const hash = await hashKey(t.key);
    const stale = await env.API_KEYS.get(keyKvName(hash));
    const graceEnd = clock.set(Date.now()) + 60_000;
    await expectJson(
      await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: 60 }),
      201,
    );
    await restoreStale(keyKvName(hash), stale, () => forgetKey(hash));
    clock.set(graceEnd - 1);
    expect((await asKey(t.key, "GET", "/gateway/v1/usage")).status).toBe(200);
    clock.set(graceEnd);
    await expectProblem(
      await asKey(t.key, "GET", "/gateway/v1/usage"),
      401,
      "unauthorized",
      "Unauthorized",
      "The API key has expired.",
    );
  });

  it("refuses a suspended tenant everywhere on the tenant API, even with a stale tenant record", async () => {
    const t = await seedTenant();
    const adminKey = await createKey(t.tenantId, { role: "admin" });
    const stale = await env.API_KEYS.get(tenantKvName(t.tenantId));
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);
    await restoreStale(tenantKvName(t.tenantId), stale, () => forgetTenant(t.tenantId));

    const detail = "This account is suspended. Contact the API provider.";
    for (const [method, path, body] of [
      ["GET", "/gateway/v1/usage"],
      ["GET", "/gateway/v1/keys"],
      ["GET", `/gateway/v1/usage/export?${RANGE}`],
      ["GET", `/gateway/v1/usage/timeseries?${RANGE}`],
      ["POST", "/gateway/v1/keys", { env: "live" }],
      ["DELETE", `/gateway/v1/keys/${t.keyId}`],
    ] as [string, string, unknown?][]) {
      await expectProblem(
        await asKey(adminKey.key, method, path, body),
        403,
        "tenant_suspended",
        "Tenant suspended",
        detail,
      );
    }
    // Nothing was created or revoked.
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "active" }), 200);
    const keys = await expectJson<{ data: { revokedAt: string | null }[] }>(
      await asKey(t.key, "GET", "/gateway/v1/keys"),
      200,
    );
    expect(keys.data.map((k) => k.revokedAt)).toEqual([null, null]);
  });

  it("lets a past-due tenant read and revoke, and refuses creating keys with 402", async () => {
    const t = await seedTenant();
    const adminKey = await createKey(t.tenantId, { role: "admin" });
    const spare = await createKey(t.tenantId);
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "past_due" }), 200);

    expect((await asKey(adminKey.key, "GET", "/gateway/v1/usage")).status).toBe(200);
    expect((await asKey(adminKey.key, "GET", "/gateway/v1/keys")).status).toBe(200);
    expect((await asKey(adminKey.key, "GET", `/gateway/v1/usage/export?${RANGE}`)).status).toBe(200);
    await expectProblem(
      await asKey(adminKey.key, "POST", "/gateway/v1/keys", { env: "live" }),
      402,
      "payment_required",
      "Payment required",
      "This account has an unpaid balance. Update billing to continue.",
    );
    await expectJson(await asKey(adminKey.key, "DELETE", `/gateway/v1/keys/${spare.id}`), 200);
  });

  it("refuses a past-due tenant's key creation even when the cached record still says active", async () => {
    const t = await seedTenant();
    const adminKey = await createKey(t.tenantId, { role: "admin" });
    const stale = await env.API_KEYS.get(tenantKvName(t.tenantId));
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "past_due" }), 200);
    await restoreStale(tenantKvName(t.tenantId), stale, () => forgetTenant(t.tenantId));
    expect((await asKey(adminKey.key, "POST", "/gateway/v1/keys", { env: "live" })).status).toBe(402);
  });

  it("enforces the key's IP allowlist on the tenant API", async () => {
    const t = await seedTenant();
    const fenced = await createKey(t.tenantId, { ipAllowlist: ["203.0.113.0/24"] });
    expect(
      (await asKey(fenced.key, "GET", "/gateway/v1/usage", undefined, { "cf-connecting-ip": "203.0.113.5" }))
        .status,
    ).toBe(200);
    await expectProblem(
      await asKey(fenced.key, "GET", "/gateway/v1/usage", undefined, { "cf-connecting-ip": "198.51.100.1" }),
      403,
      "ip_not_allowed",
      "IP address not allowed",
      "Requests from 198.51.100.1 are not allowed for this key.",
    );
    await expectProblem(
      await asKey(fenced.key, "GET", "/gateway/v1/keys"),
      403,
      "ip_not_allowed",
      "IP address not allowed",
      "Requests from this address are not allowed for this key.",
    );
  });

  it("has its own management bucket: not the API's bucket or quota, 429 with Retry-After", async () => {
    clock.set(Date.now());
    const t = await seedTenant({
      plan: { burstCapacity: 5, refillTokens: 1, refillPeriodSeconds: 3600, dailyQuota: 5 },
    });
    // Export costs 30 of the 300-token management bucket (5 back per second): of eleven at once,
    // ten fit and one does not.
    const responses = await Promise.all(
      Array.from({ length: 11 }, () => asKey(t.key, "GET", `/gateway/v1/usage/export?${RANGE}`)),
    );
    await Promise.all(responses.map((r) => (r.status === 200 ? r.text() : null)));
    expect(responses.map((r) => r.status).sort()).toEqual([...Array(10).fill(200), 429]);
    const limited = responses.find((r) => r.status === 429) as Response;
    // The clock stands still: exactly 30 tokens short, 5 back per second.
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBe(6);
    expect(limited.headers.get("ratelimit-policy")).toBe('"manage";q=300;w=60');
    await expectProblem(
      limited,
      429,
      "rate_limited",
      "Rate limited",
      `Too many tenant API requests. Retry in ${retryAfter} s.`,
    );
    // The API's own windows were not touched.
    const marker = uniq();
    const proxied = await gateway(`/v1/${marker}`, { headers: bearer(t.key) });
    expect(proxied.status).toBe(200);
    expect(proxied.headers.get("x-ratelimit-burstremaining")).toBe("4");
    const usage = await expectJson<{ daily: { used: number } }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/usage`),
      200,
    );
    expect(usage.daily.used).toBe(1);
  });

  it("makes exactly one Durable Object call per tenant API request, the usage API included", async () => {
    const t = await seedTenant();
    await asKey(t.key, "GET", "/gateway/v1/keys");
    let before = doCalls.count;
    const usage = await expectJson<{ daily: { used: number } }>(
      await asKey(t.key, "GET", "/gateway/v1/usage"),
      200,
    );
    expect(usage.daily.used).toBe(0);
    expect(doCalls.count - before).toBe(1);
    before = doCalls.count;
    const listed = await asKey(t.key, "GET", "/gateway/v1/keys");
    expect(listed.status).toBe(200);
    expect(doCalls.count - before).toBe(1);
    expect(listed.headers.get("ratelimit-policy")).toBe('"manage";q=300;w=60');
    expect(listed.headers.get("ratelimit")).toMatch(/^"manage";r=29\d;t=[01]$/);
    // Refused from the cached records: no call at all.
    const fenced = await createKey(t.tenantId, { ipAllowlist: ["203.0.113.0/24"] });
    before = doCalls.count;
    expect((await asKey(fenced.key, "GET", "/gateway/v1/keys")).status).toBe(403);
    expect(doCalls.count - before).toBe(0);
  });
});
