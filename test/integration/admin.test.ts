/** Admin API: token, plan/tenant/key flows, rotation grace, and bad input as 400 (never 500). */
import { describe, expect, it } from "vitest";
import { controlledClock } from "../support/clock";
import {
  admin,
  bearer,
  createKey,
  createPlan,
  expectJson,
  gateway,
  seedTenant,
  uniq,
} from "../support/gateway";

interface Key {
  id: string;
  prefix: string;
  last4: string;
  key?: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedFromId: string | null;
}

const clock = controlledClock();

describe("admin API", () => {
  it("requires the admin token, compared exactly", async () => {
    for (const token of ["", "test-admin-tokeN", "test-admin-token-longer", "x"]) {
      const res = await admin("GET", "/admin/v1/plans", undefined, token);
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    }
    expect((await gateway("/admin/v1/plans")).status).toBe(401);
    expect((await gateway("/admin/v1/does-not-exist")).status).toBe(401);
    expect((await admin("GET", "/admin/v1/plans")).status).toBe(200);
  });

  it("takes the Bearer scheme in any case, the token only exactly", async () => {
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
      const res = await gateway("/admin/v1/plans", {
        headers: { authorization: `${scheme} test-admin-token` },
      });
      expect({ scheme, status: res.status }).toEqual({ scheme, status: 200 });
    }
    for (const header of ["bearer TEST-ADMIN-TOKEN", "Basic test-admin-token", "bearer"]) {
      const res = await gateway("/admin/v1/plans", { headers: { authorization: header } });
      expect({ header, status: res.status }).toEqual({ header, status: 401 });
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="gateway-admin"');
      expect(await res.json()).toEqual({
        type: "https://gateway.dev/problems/unauthorized",
        title: "Unauthorized",
        status: 401,
        detail: "A valid admin token is required.",
        code: "unauthorized",
        request_id: res.headers.get("x-request-id"),
      });
    }
  });

  it("creates a tenant with its first key shown once, then lists keys by prefix and last 4 only", async () => {
    const plan = await createPlan();
    const slug = `acme-${uniq()}`;
    const created = await expectJson<{ tenant: { id: string; status: string }; key: Key }>(
      await admin("POST", "/admin/v1/tenants", { slug, name: "Acme", planId: plan.id }),
      201,
    );
    expect(created.tenant.status).toBe("active");
    expect(created.key.key).toMatch(/^gw_live_/);
    expect(created.key.prefix).toBe(created.key.key?.slice(0, 12));
    expect(created.key.last4).toBe(created.key.key?.slice(-4));

    const listed = await expectJson<{ data: Key[] }>(
      await admin("GET", `/admin/v1/tenants/${created.tenant.id}/keys`),
      200,
    );
    expect(listed.data.map((k) => k.id)).toEqual([created.key.id]);
    const raw = JSON.stringify(listed);
    expect(raw).not.toContain(created.key.key);
    expect(raw).not.toContain('"hash"');

    const bySlug = await expectJson<{ data: { id: string }[] }>(
      await admin("GET", `/admin/v1/tenants?slug=${slug}`),
      200,
    );
    expect(bySlug.data.map((t) => t.id)).toEqual([created.tenant.id]);

    const dup = await admin("POST", "/admin/v1/tenants", { slug, name: "Again", planId: plan.id });
    expect(dup.status).toBe(409);
    expect((await dup.json<{ code: string }>()).code).toBe("conflict");
  });

  it("creates live and test keys and revokes one (idempotently)", async () => {
    const t = await seedTenant();
    const live = await createKey(t.tenantId, { env: "live", name: "ci" });
    const test = await createKey(t.tenantId, { env: "test" });
    expect(live.key).toMatch(/^gw_live_/);
    expect(test.key).toMatch(/^gw_test_/);
    const first = await expectJson<Key>(await admin("DELETE", `/admin/v1/keys/${live.id}`), 200);
    expect(first.revokedAt).not.toBeNull();
    const again = await expectJson<Key>(await admin("DELETE", `/admin/v1/keys/${live.id}`), 200);
    expect(again.revokedAt).toBe(first.revokedAt);
    expect((await gateway("/v1/x", { headers: bearer(live.key) })).status).toBe(401);
    expect((await gateway("/v1/x", { headers: bearer(test.key) })).status).toBe(200);
    expect((await admin("DELETE", "/admin/v1/keys/key_nope")).status).toBe(404);
  });

  it("rotates a key: the new one works at once, the old one until its grace period ends", async () => {
    const t = await seedTenant();
    const graceEnd = clock.set(Date.now()) + 120_000;
    const rotated = await expectJson<{ key: Key; previous: Key }>(
      await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: 120 }),
      201,
    );
    expect(rotated.key.rotatedFromId).toBe(t.keyId);
    expect(rotated.previous.expiresAt).toBe(new Date(graceEnd).toISOString());
    const newKey = rotated.key.key as string;
    expect((await gateway("/v1/x", { headers: bearer(newKey) })).status).toBe(200);
    expect((await gateway("/v1/x", { headers: bearer(t.key) })).status).toBe(200);
    clock.set(graceEnd - 1);
    expect((await gateway("/v1/x", { headers: bearer(t.key) })).status).toBe(200);
    clock.set(graceEnd);
    expect((await gateway("/v1/x", { headers: bearer(t.key) })).status).toBe(401);
    expect((await gateway("/v1/x", { headers: bearer(newKey) })).status).toBe(200);

    const immediate = await expectJson<{ key: Key }>(
      await admin("POST", `/admin/v1/keys/${rotated.key.id}/rotate`, { gracePeriodSeconds: 0 }),
      201,
    );
    expect((await gateway("/v1/x", { headers: bearer(newKey) })).status).toBe(401);
    expect((await gateway("/v1/x", { headers: bearer(immediate.key.key as string) })).status).toBe(200);

    const stale = await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, {});
    expect(stale.status).toBe(409);
  });

  it("answers bad JSON, wrong types, unknown fields and oversized bodies with 4xx problem+json", async () => {
    const t = await seedTenant();
    const raw = (method: string, path: string, body: string, contentType = "application/json") =>
      gateway(path, {
        method,
        headers: { authorization: "Bearer test-admin-token", "content-type": contentType },
        body,
      });
    const cases: [Promise<Response>, number][] = [
      [raw("POST", "/admin/v1/plans", "{not json"), 400],
      [raw("POST", "/admin/v1/plans", ""), 400],
      [raw("POST", "/admin/v1/plans", "name=x", "application/x-www-form-urlencoded"), 415],
      [
        admin("POST", "/admin/v1/plans", {
          name: "x",
          burstCapacity: "10",
          refillTokens: 1,
          refillPeriodSeconds: 1,
        }),
        400,
      ],
      [
        admin("POST", "/admin/v1/plans", {
          name: "x",
          burstCapacity: -1,
          refillTokens: 1,
          refillPeriodSeconds: 1,
        }),
        400,
      ],
      [admin("POST", "/admin/v1/plans", [1, 2, 3]), 400],
      [admin("POST", "/admin/v1/tenants", { slug: "Bad Slug!", name: "x", planId: t.plan.id }), 400],
      [admin("POST", "/admin/v1/tenants", { slug: `s-${uniq()}`, name: "x", planId: "plan_missing" }), 400],
      [
        admin("POST", "/admin/v1/tenants", { slug: `s-${uniq()}`, name: "x", planId: t.plan.id, extra: 1 }),
        400,
      ],
      [admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { env: "prod" }), 400],
      [admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { ipAllowlist: ["10.0.0.0/33"] }), 400],
      [admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { expiresAt: "tomorrow" }), 400],
      [admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "deleted" }), 400],
      [admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: -5 }), 400],
      [admin("POST", "/admin/v1/tenants/ten_nope/keys", {}), 404],
      [admin("GET", "/admin/v1/tenants/ten_nope"), 404],
      [raw("POST", "/admin/v1/plans", JSON.stringify({ name: "x".repeat(70 * 1024) })), 413],
    ];
    for (const [pending, status] of cases) {
      const res = await pending;
      const body = await res.text();
      expect({ status: res.status, body }).toMatchObject({ status });
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(JSON.parse(body).request_id).toBe(res.headers.get("x-request-id"));
    }
  });

  it("reports which fields failed validation", async () => {
    const res = await admin("POST", "/admin/v1/plans", { name: "", burstCapacity: "ten" });
    const body = await expectJson<{ code: string; errors: { path: string }[] }>(res, 400);
    expect(body.code).toBe("validation_failed");
    expect(body.errors.map((e) => e.path)).toEqual(
      expect.arrayContaining(["name", "burstCapacity", "refillTokens", "refillPeriodSeconds"]),
    );
  });
});
