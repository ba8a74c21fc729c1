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

  it("requires a valid key", async () => {
    const res = await gateway("/gateway/v1/keys");
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});
