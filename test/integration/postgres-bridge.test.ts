/**
 * Postgres is reachable from inside workerd through the local WebSocket bridge (neon driver + drizzle),
 * transactions work over it, and `withTenant` confines a tenant to its own rows via row-level security.
 */
import { env } from "cloudflare:workers";
import { eq, inArray, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { apiKeys, plans, tenants } from "../../schema";
import { type DbHandle, openDb, withTenant } from "../../workers/shared/db";

const handles: DbHandle[] = [];

function open(): DbHandle {
  const handle = openDb(env);
  handles.push(handle);
  return handle;
}

afterAll(async () => {
  await Promise.all(handles.map((h) => h.close()));
});

describe("Postgres through the bridge", () => {
  it("answers a query", async () => {
    const { db } = open();
    const result = await db.execute<{ n: number }>(sql`select count(*)::int as n from plans`);
    expect(typeof result.rows[0]?.n).toBe("number");
  });

  it("runs transactions: committed rows stay, rolled-back rows vanish", async () => {
    const { db } = open();
    const kept = `bridge-kept-${crypto.randomUUID()}`;
    const dropped = `bridge-dropped-${crypto.randomUUID()}`;
    const plan = { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 1 };

    await db.transaction(async (tx) => {
      await tx.insert(plans).values({ id: kept, name: kept, ...plan });
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(plans).values({ id: dropped, name: dropped, ...plan });
        const seen = await tx.select().from(plans).where(eq(plans.id, dropped));
        expect(seen).toHaveLength(1);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");

    const rows = await db
      .select({ id: plans.id })
      .from(plans)
      .where(inArray(plans.id, [kept, dropped]));
    expect(rows.map((r) => r.id)).toEqual([kept]);
    await db.delete(plans).where(eq(plans.id, kept));
  });
});

describe("withTenant", () => {
  it("limits api_keys to the tenant's own rows (row-level security)", async () => {
    const { db } = open();
    const run = crypto.randomUUID().slice(0, 8);
    const planId = `rls-plan-${run}`;
    const [tenantA, tenantB] = [`rls-a-${run}`, `rls-b-${run}`];
    const key = (tenantId: string) => ({
      id: `key-${tenantId}`,
      tenantId,
      hash: `hash-${tenantId}`,
      prefix: "gw_test_",
      last4: "abcd",
      env: "test" as const,
    });

    await db
      .insert(plans)
      .values({ id: planId, name: planId, burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 1 });
    await db.insert(tenants).values([
      { id: tenantA, slug: tenantA, name: "Tenant A", planId },
      { id: tenantB, slug: tenantB, name: "Tenant B", planId },
    ]);
    await db.insert(apiKeys).values([key(tenantA), key(tenantB)]);
    try {
      // As the login user (no RLS role) both rows are visible.
      const all = await db
        .select({ id: apiKeys.id })
        .from(apiKeys)
        .where(inArray(apiKeys.tenantId, [tenantA, tenantB]));
      expect(all).toHaveLength(2);

      const visible = await withTenant(db, tenantA, (tx) => tx.select().from(apiKeys));
      expect(visible.map((k) => k.tenantId)).toEqual([tenantA]);
      const visibleTenants = await withTenant(db, tenantA, (tx) =>
        tx.select({ id: tenants.id }).from(tenants),
      );
      expect(visibleTenants).toEqual([{ id: tenantA }]);
    } finally {
      await db.delete(apiKeys).where(inArray(apiKeys.tenantId, [tenantA, tenantB]));
      await db.delete(tenants).where(inArray(tenants.id, [tenantA, tenantB]));
      await db.delete(plans).where(eq(plans.id, planId));
    }
  });
});
