/** Row-level security through the tenant API: a tenant's key sees only its own rows. */
import { describe, expect, it } from "vitest";
import { bearer, createKey, expectJson, gateway, seedTenant } from "../support/gateway";

describe("tenant isolation", () => {
  it("lists only the caller's own keys", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const a2 = await createKey(a.tenantId, { env: "test" });
    await createKey(b.tenantId);

    const seenByA = await expectJson<{ data: { id: string; tenantId: string }[] }>(
      await gateway("/gateway/v1/keys", { headers: bearer(a.key) }),
      200,
    );
    expect(seenByA.data.map((k) => k.id).sort()).toEqual([a.keyId, a2.id].sort());
    expect(seenByA.data.every((k) => k.tenantId === a.tenantId)).toBe(true);

    const seenByB = await expectJson<{ data: { tenantId: string }[] }>(
      await gateway("/gateway/v1/keys", { headers: bearer(b.key) }),
      200,
    );
    expect(seenByB.data).toHaveLength(2);
    expect(seenByB.data.every((k) => k.tenantId === b.tenantId)).toBe(true);
  });

  it("lets an admin-role key create and revoke its tenant's keys, and nobody else's", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const member = await createKey(a.tenantId, { role: "member" });
    const asA = (method: string, path: string, body?: unknown, key = a.key) =>
      gateway(path, {
        method,
        headers: { ...bearer(key), "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    const created = await expectJson<{ id: string; key: string; tenantId: string; env: string }>(
      await asA("POST", "/gateway/v1/keys", { env: "test", name: "ci" }),
      201,
    );
    expect(created).toMatchObject({ tenantId: a.tenantId, env: "test" });
    expect((await gateway("/v1/self-made", { headers: bearer(created.key) })).status).toBe(200);

    const denied = await asA("POST", "/gateway/v1/keys", { env: "live" }, member.key);
    expect(denied.status).toBe(403);
    expect((await denied.json<{ code: string }>()).code).toBe("forbidden");

    // Another tenant's key id is "not found", and stays valid.
    expect((await asA("DELETE", `/gateway/v1/keys/${b.keyId}`)).status).toBe(404);
    expect((await gateway("/v1/still-b", { headers: bearer(b.key) })).status).toBe(200);

    await expectJson(await asA("DELETE", `/gateway/v1/keys/${created.id}`), 200);
    expect((await gateway("/v1/revoked", { headers: bearer(created.key) })).status).toBe(401);
    expect((await asA("POST", "/gateway/v1/keys", { env: "prod" })).status).toBe(400);
  });

  it("requires a valid key", async () => {
    const res = await gateway("/gateway/v1/keys");
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});
