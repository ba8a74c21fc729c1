/**
 * `PATCH /admin/v1/keys/:id`: name, IP allowlist, per-key limit and expiry, projected to KV and the
 * tenant object in the same request — a change applies on the next request whatever KV and the
 * isolate cache still hold (simulated by writing the stale record back).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName } from "../../workers/shared/auth-context";
import { forgetKey } from "../../workers/shared/key-store";
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

/** Writes the key's KV record from before the change back, as another location would still see it. */
async function keepStale(key: string): Promise<() => Promise<void>> {
  const hash = await hashKey(key);
  const stale = await env.API_KEYS.get(keyKvName(hash));
  if (stale === null) throw new Error("no KV record");
  return async () => {
    await env.API_KEYS.put(keyKvName(hash), stale);
    forgetKey(hash);
  };
}

const from = (ip: string) => ({ "cf-connecting-ip": ip });
const iso = (ms: number) => new Date(ms).toISOString();
const clock = controlledClock();

describe("PATCH /admin/v1/keys/:id", () => {
  it("updates name, allowlist, per-key limit and expiry, and returns the key", async () => {
    const t = await seedTenant();
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const rateLimit = { burstCapacity: 3, refillTokens: 1, refillPeriodSeconds: 60 };
    const updated = await expectJson<Record<string, unknown>>(
      await admin("PATCH", `/admin/v1/keys/${t.keyId}`, {
        name: "ci",
        ipAllowlist: ["203.0.113.0/24"],
        rateLimit,
        expiresAt,
      }),
      200,
    );
    expect(updated).toMatchObject({
      id: t.keyId,
      name: "ci",
      ipAllowlist: ["203.0.113.0/24"],
      rateLimit,
      expiresAt,
    });
    expect(await expectJson(await admin("GET", `/admin/v1/keys/${t.keyId}`), 200)).toEqual(updated);
    // Only the fields sent change.
    const renamed = await expectJson<Record<string, unknown>>(
      await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { name: null }),
      200,
    );
    expect(renamed).toEqual({ ...updated, name: null });
  });

  it("applies a narrowed allowlist on the next request, whatever KV and the isolate cache hold", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const restore = await keepStale(t.key);
    expect(
      (await gateway(`/v1/${marker}/before`, { headers: { ...bearer(t.key), ...from("198.51.100.1") } }))
        .status,
    ).toBe(200);
    await expectJson(
      await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { ipAllowlist: ["203.0.113.0/24"] }),
      200,
    );
    await restore();

    const refused = await gateway(`/v1/${marker}/after`, {
      headers: { ...bearer(t.key), ...from("198.51.100.1") },
    });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({
      type: "https://gateway.dev/problems/ip_not_allowed",
      title: "IP address not allowed",
      status: 403,
      detail: "Requests from 198.51.100.1 are not allowed for this key.",
      code: "ip_not_allowed",
      request_id: refused.headers.get("x-request-id"),
    });
    const tenantApi = await gateway("/gateway/v1/usage", {
      headers: { ...bearer(t.key), ...from("198.51.100.1") },
    });
    expect(tenantApi.status).toBe(403);
    expect(
      (await gateway(`/v1/${marker}/inside`, { headers: { ...bearer(t.key), ...from("203.0.113.9") } }))
        .status,
    ).toBe(200);
    expect((await originCalls(marker)).map((c) => c.path).sort()).toEqual([
      `/v1/${marker}/before`,
      `/v1/${marker}/inside`,
    ]);
  });

  it("applies a tighter per-key limit on the next request, whatever KV holds", async () => {
    const t = await seedTenant();
    const restore = await keepStale(t.key);
    await expectJson(
      await admin("PATCH", `/admin/v1/keys/${t.keyId}`, {
        rateLimit: { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 3600 },
      }),
      200,
    );
    await restore();
    expect((await gateway("/v1/a", { headers: bearer(t.key) })).status).toBe(200);
    const limited = await gateway("/v1/b", { headers: bearer(t.key) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3600");
  });

  it("refuses a key from the instant its shortened expiry passes, whatever KV holds", async () => {
    const t = await seedTenant();
    const restore = await keepStale(t.key);
    const expiresAt = clock.set(Date.now()) + 60_000;
    await expectJson(await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { expiresAt: iso(expiresAt) }), 200);
    await restore();
    clock.set(expiresAt - 1);
    expect((await gateway("/v1/before", { headers: bearer(t.key) })).status).toBe(200);
    // KV still says the key never expires: only the tenant object knows.
    clock.set(expiresAt);
    const res = await gateway("/v1/after", { headers: bearer(t.key) });
    expect(res.status).toBe(401);
    expect((await res.json<{ detail: string }>()).detail).toBe("The API key has expired.");
  });

  it("un-refuses a key whose expiry is extended before it passes, until the new expiry", async () => {
    const t = await seedTenant();
    const first = clock.set(Date.now()) + 60_000;
    const k = await createKey(t.tenantId, { expiresAt: iso(first) });
    const extended = first + 3_600_000;
    await expectJson(await admin("PATCH", `/admin/v1/keys/${k.id}`, { expiresAt: iso(extended) }), 200);
    clock.set(first);
    expect((await gateway("/v1/extended", { headers: bearer(k.key) })).status).toBe(200);
    expect((await gateway("/gateway/v1/keys", { headers: bearer(k.key) })).status).toBe(200);
    clock.set(extended);
    expect((await gateway("/v1/past-extended", { headers: bearer(k.key) })).status).toBe(401);
  });

  it("refuses an expiry in the past with 400, a revoked key with 409, an unknown one with 404", async () => {
    const t = await seedTenant();
    const past = await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { expiresAt: "2020-01-01T00:00:00Z" });
    expect(past.status).toBe(400);
    expect(await past.json()).toEqual({
      type: "https://gateway.dev/problems/validation_failed",
      title: "Validation failed",
      status: 400,
      detail: "The request is invalid.",
      code: "validation_failed",
      request_id: past.headers.get("x-request-id"),
      errors: [{ path: "expiresAt", message: "must be in the future" }],
    });
    expect((await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { role: "admin" })).status).toBe(400);

    await expectJson(await admin("DELETE", `/admin/v1/keys/${t.keyId}`), 200);
    const revoked = await admin("PATCH", `/admin/v1/keys/${t.keyId}`, { expiresAt: null });
    expect(revoked.status).toBe(409);
    expect((await revoked.json<{ code: string; detail: string }>()).detail).toBe(
      "The key is revoked; issue a new one instead.",
    );
    expect((await gateway("/v1/still-revoked", { headers: bearer(t.key) })).status).toBe(401);

    const unknown = await admin("PATCH", "/admin/v1/keys/key_nope", { name: "x" });
    expect(unknown.status).toBe(404);
  });

  it("is in the OpenAPI document", async () => {
    const doc = await expectJson<{ paths: Record<string, Record<string, unknown>> }>(
      await gateway("/gateway/openapi.json"),
      200,
    );
    expect(Object.keys(doc.paths["/admin/v1/keys/{id}"] ?? {}).sort()).toEqual(["delete", "get", "patch"]);
  });
});
