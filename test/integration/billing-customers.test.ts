/**
 * Stripe customers are keyed by ids that are never reused. A tenant's customer used to be created
 * with the Stripe idempotency key `tenant-<slug>`: a tenant made again with the same slug within
 * Stripe's 24 h key window — tried here as a new user would, against a fresh database and the same
 * Stripe — was silently handed the first tenant's customer (its usage, invoices and card).
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { openDb } from "../../workers/shared/db";
import { admin, createPlan, expectJson, uniq } from "../support/gateway";

type Tenant = { id: string; stripeCustomerId: string | null };

async function createTenant(slug: string, planId: string): Promise<Tenant> {
  const body = await expectJson<{ tenant: Tenant }>(
    await admin("POST", "/admin/v1/tenants", { slug, name: `Tenant ${slug}`, planId }),
    201,
  );
  return body.tenant;
}

/** What a fresh database looks like to the next tenant with this slug: the first one never existed. */
async function forget(tenantId: string): Promise<void> {
  const { db, close } = openDb(env);
  try {
    await db.execute(sql`DELETE FROM api_keys WHERE tenant_id = ${tenantId}`);
    await db.execute(sql`DELETE FROM billing_sync WHERE tenant_id = ${tenantId}`);
    await db.execute(sql`DELETE FROM tenants WHERE id = ${tenantId}`);
  } finally {
    await close();
  }
}

describe("Stripe customers", () => {
  it("gives a tenant recreated with the same slug (fresh database, same Stripe) its own customer", async () => {
    const plan = await createPlan();
    const slug = `re-${uniq()}`;
    const first = await createTenant(slug, plan.id);
    expect(first.stripeCustomerId).toMatch(/^cus_/);
    await forget(first.id);

    const second = await createTenant(slug, plan.id);
    expect(second.id).not.toBe(first.id);
    expect(second.stripeCustomerId).toMatch(/^cus_/);
    expect(second.stripeCustomerId).not.toBe(first.stripeCustomerId);
  });
});
