/**
 * README "Admin API": GET a plan, a tenant and a key by id; change a tenant's plan (PATCH), seen on
 * the next proxied request; the reconciliation endpoint's 31-day cap per call.
 */
import { describe, expect, it } from "vitest";
import { newId } from "../../workers/shared/ids";
import { admin, bearer, createPlan, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

function problem(res: Response, status: number, code: string, title: string, detail: string) {
  return {
    type: `https://gateway.dev/problems/${code}`,
    title,
    status,
    detail,
    code,
    request_id: res.headers.get("x-request-id"),
  };
}

async function expectProblem(res: Response, status: number, code: string, title: string, detail: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(await res.json()).toEqual(problem(res, status, code, title, detail));
}

describe("admin API: read by id", () => {
  it("GET /admin/v1/plans/:id returns the plan as created; an unknown id is 404", async () => {
    const created = await createPlan({ name: `read-${uniq()}`, dailyQuota: 123 });
    const read = await expectJson(await admin("GET", `/admin/v1/plans/${created.id}`), 200);
    expect(read).toEqual(created);
    expect(read.dailyQuota).toBe(123);
    await expectProblem(
      await admin("GET", `/admin/v1/plans/${newId("plan")}`),
      404,
      "not_found",
      "Not found",
      "No such plan.",
    );
  });

  it("GET /admin/v1/tenants/:id returns the tenant as created; an unknown id is 404", async () => {
    const plan = await createPlan();
    const slug = `r-${uniq()}`;
    const created = await expectJson<{ tenant: Record<string, unknown> }>(
      await admin("POST", "/admin/v1/tenants", { slug, name: `Read ${slug}`, planId: plan.id }),
      201,
    );
    const read = await expectJson(await admin("GET", `/admin/v1/tenants/${created.tenant.id}`), 200);
    expect(read).toEqual(created.tenant);
    expect([read.slug, read.planId]).toEqual([slug, plan.id]);
    await expectProblem(
      await admin("GET", `/admin/v1/tenants/${newId("ten")}`),
      404,
      "not_found",
      "Not found",
      "No such tenant.",
    );
  });

  it("GET /admin/v1/keys/:id returns the key without its plaintext; an unknown id is 404", async () => {
    const t = await seedTenant();
    const created = await expectJson<Record<string, unknown>>(
      await admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { name: "reader", env: "test" }),
      201,
    );
    const { key: plaintext, ...withoutPlaintext } = created;
    expect(typeof plaintext).toBe("string");
    const read = await expectJson(await admin("GET", `/admin/v1/keys/${created.id}`), 200);
    expect(read).toEqual(withoutPlaintext);
    expect(JSON.stringify(read)).not.toContain(plaintext as string);
    await expectProblem(
      await admin("GET", `/admin/v1/keys/${newId("key")}`),
      404,
      "not_found",
      "Not found",
      "No such key.",
    );
  });
});

describe("admin API: changing a tenant's plan", () => {
  it("PATCH planId moves the tenant: GET shows it and the next proxied request runs on the new plan", async () => {
    const t = await seedTenant({ plan: { burstCapacity: 10 } });
    const before = await gateway(`/v1/${uniq()}`, { headers: bearer(t.key) });
    expect(before.status).toBe(200);
    expect(before.headers.get("x-ratelimit-plan")).toBe(t.plan.name);
    expect(before.headers.get("ratelimit-policy")).toContain('"burst";q=10;');

    const next = await createPlan({ burstCapacity: 77 });
    const patched = await expectJson(
      await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { planId: next.id }),
      200,
    );
    expect(patched.planId).toBe(next.id);
    expect((await expectJson(await admin("GET", `/admin/v1/tenants/${t.tenantId}`), 200)).planId).toBe(
      next.id,
    );
    const after = await gateway(`/v1/${uniq()}`, { headers: bearer(t.key) });
    expect(after.status).toBe(200);
    expect(after.headers.get("x-ratelimit-plan")).toBe(next.name);
    expect(after.headers.get("ratelimit-policy")).toContain('"burst";q=77;');

    const unknown = await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { planId: newId("plan") });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({
      ...problem(unknown, 400, "validation_failed", "Validation failed", "No such plan."),
      errors: [{ path: "planId", message: "unknown plan" }],
    });
  });
});

describe("admin API: reconciliation range", () => {
  it("answers 31 days; refuses 31 days and 1 ms, and a `to` not after `from`, with 400", async () => {
    const from = "2026-10-01T00:00:00.000Z";
    const ok = await expectJson<{ from: string; to: string; rows: unknown[] }>(
      await admin("GET", `/admin/v1/reconciliation?from=${from}&to=2026-11-01T00:00:00.000Z`),
      200,
    );
    expect([ok.from, ok.to]).toEqual([from, "2026-11-01T00:00:00.000Z"]);
    for (const to of ["2026-11-01T00:00:00.001Z", from, "2026-09-30T00:00:00.000Z"]) {
      await expectProblem(
        await admin("GET", `/admin/v1/reconciliation?from=${from}&to=${to}`),
        400,
        "validation_failed",
        "Validation failed",
        "`to` must be after `from`, at most 31 days later.",
      );
    }
  });
});
