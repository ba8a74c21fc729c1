/**
 * The config version the tenant object keeps the newest of: every change of a tenant or its plan
 * gets a strictly newer one (a Postgres trigger, schema/migrations/0009), so two changes in the same
 * millisecond — which the old "ms of the last change" version gave the same number — both reach the
 * object, and the later one wins.
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { plans, tenants } from "../../schema";
import { type TestDb, withDb } from "../support/db";
import { admin, bearer, expectJson, gateway, seedTenant } from "../support/gateway";

const versionOf = (db: TestDb, id: string) =>
  db
    .select({ v: tenants.configVersion })
    .from(tenants)
    .where(eq(tenants.id, id))
    .then((rows) => rows[0]?.v ?? -1);

describe("config versions", () => {
  it("gives every change of a tenant a newer version, even five in one transaction (one millisecond)", async () => {
    const { tenantId } = await seedTenant();
    const versions = await withDb((db) =>
      db.transaction(async (tx) => {
        const seen = [await versionOf(tx as never, tenantId)];
        for (let i = 0; i < 5; i++) {
          await tx
            .update(tenants)
            .set({ name: `renamed ${i}` })
            .where(eq(tenants.id, tenantId));
          seen.push(await versionOf(tx as never, tenantId));
        }
        return seen;
      }),
    );
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
    // Versions stay on the ms scale, so objects that kept an ms-of-change version still take them.
    expect(versions[0]).toBeGreaterThan(Date.now() - 3_600_000);
  });

  it("gives every tenant on a plan a newer version when the plan changes", async () => {
    const { tenantId, plan } = await seedTenant();
    const before = await withDb((db) => versionOf(db, tenantId));
    await withDb((db) => db.update(plans).set({ dailyQuota: 5 }).where(eq(plans.id, plan.id)));
    expect(await withDb((db) => versionOf(db, tenantId))).toBeGreaterThan(before);
  });

  it("applies a suspension and the reactivation right after it, in that order, on the next request", async () => {
    const { tenantId, key } = await seedTenant();
    for (const status of ["suspended", "active", "suspended", "active"] as const) {
      await expectJson(await admin("PATCH", `/admin/v1/tenants/${tenantId}`, { status }), 200);
      const res = await gateway("/v1/config-version", { headers: bearer(key) });
      await res.arrayBuffer();
      expect(res.status, status).toBe(status === "active" ? 200 : 403);
    }
  });
});
