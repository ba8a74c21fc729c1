/**
 * Revocation in one request: the tenant object refuses a revoked (or grace-expired) key on the
 * very next request even where KV and the isolate cache still hold the key as valid — simulated
 * here by writing the stale record back, as another location would still see it.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName, tenantKvName } from "../../workers/shared/auth-context";
import { forgetKey, forgetTenant } from "../../workers/shared/key-store";
import { admin, bearer, expectJson, gateway, originCalls, seedTenant, uniq } from "../support/gateway";

async function restoreStale(name: string, stale: string | null, forget: () => void) {
  if (stale === null) throw new Error(`no KV record ${name}`);
  await env.API_KEYS.put(name, stale);
  forget();
}

describe("revocation in one request", () => {
  it("refuses a revoked key on the next request even with a stale KV record", async () => {
    const t = await seedTenant();
    const hash = await hashKey(t.key);
    const stale = await env.API_KEYS.get(keyKvName(hash));
    const marker = uniq();
    expect((await gateway(`/v1/${marker}/before`, { headers: bearer(t.key) })).status).toBe(200);

    await expectJson(await admin("DELETE", `/admin/v1/keys/${t.keyId}`), 200);
    await restoreStale(keyKvName(hash), stale, () => forgetKey(hash));

    const res = await gateway(`/v1/${marker}/after`, { headers: bearer(t.key) });
    expect(res.status).toBe(401);
    expect((await res.json<{ detail: string }>()).detail).toMatch(/revoked/);
    expect((await originCalls(marker)).map((c) => c.path)).toEqual([`/v1/${marker}/before`]);
  });

  it("refuses a rotated key once its grace period ends, whatever KV says", async () => {
    const t = await seedTenant();
    const hash = await hashKey(t.key);
    const stale = await env.API_KEYS.get(keyKvName(hash));
    await expectJson(await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: 1 }), 201);
    await restoreStale(keyKvName(hash), stale, () => forgetKey(hash));
    expect((await gateway("/v1/in-grace", { headers: bearer(t.key) })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await gateway("/v1/after-grace", { headers: bearer(t.key) });
    expect(res.status).toBe(401);
    expect((await res.json<{ detail: string }>()).detail).toMatch(/expired/);
  });

  it("refuses a suspended tenant on the next request with a stale tenant record", async () => {
    const t = await seedTenant();
    const stale = await env.API_KEYS.get(tenantKvName(t.tenantId));
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);
    await restoreStale(tenantKvName(t.tenantId), stale, () => forgetTenant(t.tenantId));
    const res = await gateway("/v1/x", { headers: bearer(t.key) });
    expect(res.status).toBe(403);
    expect((await res.json<{ code: string }>()).code).toBe("tenant_suspended");
  });
});
