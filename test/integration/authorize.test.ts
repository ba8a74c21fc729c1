/** Authorization: entitlements, IP allowlists and tenant status, each refused before the origin. */
import { describe, expect, it } from "vitest";
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

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = await res.json<{ status: number; code: string; request_id: string }>();
  expect({ status: res.status, code: body.code, bodyStatus: body.status }).toEqual({
    status,
    code,
    bodyStatus: status,
  });
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
}

describe("authorization", () => {
  it("refuses a route the plan is not entitled to with 403 plan_upgrade_required", async () => {
    const t = await seedTenant({ plan: { entitlements: ["api"] } });
    const marker = uniq();
    await expectProblem(
      await gateway(`/v1/reports/${marker}`, { headers: bearer(t.key) }),
      403,
      "plan_upgrade_required",
    );
    expect(await originCalls(marker)).toHaveLength(0);

    const rich = await seedTenant({ plan: { entitlements: ["api", "reports"] } });
    expect((await gateway(`/v1/reports/${marker}`, { headers: bearer(rich.key) })).status).toBe(200);
  });

  it("enforces a key's IPv4 and IPv6 allowlist", async () => {
    const t = await seedTenant();
    const k = await createKey(t.tenantId, { ipAllowlist: ["203.0.113.0/24", "2001:db8::/48"] });
    const marker = uniq();
    const call = (ip?: string) =>
      gateway(`/v1/${marker}/${ip ?? "none"}`, {
        headers: { ...bearer(k.key), ...(ip ? { "cf-connecting-ip": ip } : {}) },
      });
    expect((await call("203.0.113.77")).status).toBe(200);
    expect((await call("2001:db8:0:1::5")).status).toBe(200);
    await expectProblem(await call("198.51.100.1"), 403, "ip_not_allowed");
    await expectProblem(await call("2001:db8:1::5"), 403, "ip_not_allowed");
    await expectProblem(await call(), 403, "ip_not_allowed");
    expect((await originCalls(marker)).map((c) => c.path).sort()).toEqual(
      [`/v1/${marker}/2001:db8:0:1::5`, `/v1/${marker}/203.0.113.77`].sort(),
    );
  });

  it("refuses a suspended tenant (403) and a past-due one (402), and lets it back in when reactivated", async () => {
    const t = await seedTenant();
    const marker = uniq();
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);
    await expectProblem(await gateway(`/v1/${marker}`, { headers: bearer(t.key) }), 403, "tenant_suspended");
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "past_due" }), 200);
    await expectProblem(await gateway(`/v1/${marker}`, { headers: bearer(t.key) }), 402, "payment_required");
    expect(await originCalls(marker)).toHaveLength(0);
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "active" }), 200);
    expect((await gateway(`/v1/${marker}`, { headers: bearer(t.key) })).status).toBe(200);
  });

  it("applies a plan change to entitlements on the next request", async () => {
    const t = await seedTenant({ plan: { entitlements: ["api"] } });
    expect((await gateway("/v1/reports/q", { headers: bearer(t.key) })).status).toBe(403);
    await expectJson(
      await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { entitlements: ["api", "reports"] }),
      200,
    );
    expect((await gateway("/v1/reports/q", { headers: bearer(t.key) })).status).toBe(200);
  });

  it("sends test keys to the sandbox origin and live keys to the live one", async () => {
    const t = await seedTenant();
    const testKey = await createKey(t.tenantId, { env: "test" });
    const marker = uniq();
    expect((await gateway(`/v1/${marker}/t`, { headers: bearer(testKey.key) })).status).toBe(200);
    expect((await gateway(`/v1/${marker}/l`, { headers: bearer(t.key) })).status).toBe(200);
    expect((await originCalls(marker)).map((c) => c.path).sort()).toEqual([
      `/sandbox/v1/${marker}/t`,
      `/v1/${marker}/l`,
    ]);
  });
});
