/**
 * Revocation in one request: the tenant object refuses a revoked (or grace-expired) key on the
 * very next request even where KV and the isolate cache still hold the key as valid — simulated
 * here by writing the stale record back, as another location would still see it.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName, tenantKvName } from "../../workers/shared/auth-context";
import { forgetKey, forgetTenant } from "../../workers/shared/key-store";
import { controlledClock } from "../support/clock";
import { admin, bearer, expectJson, gateway, originCalls, seedTenant, uniq } from "../support/gateway";

async function restoreStale(name: string, stale: string | null, forget: () => void) {
  if (stale === null) throw new Error(`no KV record ${name}`);
  await env.API_KEYS.put(name, stale);
  forget();
}

const clock = controlledClock();

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
    const graceEnd = clock.set(Date.now()) + 60_000;
    await expectJson(
      await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: 60 }),
      201,
    );
    await restoreStale(keyKvName(hash), stale, () => forgetKey(hash));
    clock.set(graceEnd - 1);
    expect((await gateway("/v1/in-grace", { headers: bearer(t.key) })).status).toBe(200);
    clock.set(graceEnd);
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

  it("keeps refusing keys blocked by an object from before key records (key_blocks carried over)", async () => {
    const name = `legacy-${uniq()}`;
    const now = Date.now();
    await runInDurableObject(env.TENANT.getByName(name), (_o: TenantLimiter, state: DurableObjectState) => {
      state.storage.sql.exec(
        "CREATE TABLE key_blocks (key_id TEXT PRIMARY KEY, reason TEXT NOT NULL, not_after INTEGER NOT NULL)",
      );
      state.storage.sql.exec(
        "INSERT INTO key_blocks VALUES ('key_revoked', 'revoked', ?), ('key_rotated', 'expired', ?)",
        now - 1000,
        now + 60_000,
      );
    });
    // A restart runs the constructor again, which carries the blocks over into key records.
    await abortAllDurableObjects();
    const input = (keyId: string): AdmitInput => ({
      keyId,
      keyLimit: null,
      ipAllowlist: ["203.0.113.0/24"],
      clientIp: "203.0.113.1",
      cost: 1,
      config: {
        version: 1,
        status: "active",
        limits: {
          burstCapacity: 10,
          refillTokens: 1,
          refillPeriodSeconds: 1,
          dailyQuota: null,
          monthlyQuota: null,
        },
      },
      idempotency: null,
    });
    // A stub that saw the abort is broken: a fresh one.
    const outcomes = await runInDurableObject(
      env.TENANT.getByName(name),
      (o: TenantLimiter, state: DurableObjectState) => ({
        tables: state.storage.sql
          .exec<{ name: string }>(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'key_blocks'",
          )
          .toArray(),
        revoked: o.decide(input("key_revoked"), now).outcome,
        inGrace: o.decide(input("key_rotated"), now).outcome,
        afterGrace: o.decide(input("key_rotated"), now + 60_000).outcome,
        // The carried-over record knows no allowlist: the edge's view applies.
        outsideAllowlist: o.decide({ ...input("key_rotated"), clientIp: "198.51.100.1" }, now).outcome,
      }),
    );
    expect(outcomes).toEqual({
      tables: [],
      revoked: "revoked",
      inGrace: "admitted",
      afterGrace: "expired",
      outsideAllowlist: "ip_not_allowed",
    });
  });
});
