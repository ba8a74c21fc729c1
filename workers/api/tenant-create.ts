/**
 * Making a tenant, the one way: the admin API (`POST /admin/v1/tenants`) and self-serve sign-up
 * (workers/web/portal/signup.tsx) both call `createTenant`. In one transaction: the tenant row, its
 * first key and its billing sync (the Stripe outbox); then the KV projection of both (the edge
 * knows them on the next request), then the Stripe customer (and subscription, on a metered plan)
 * — if Stripe is unreachable the tenant is made anyway and the cron catches up.
 */
import { eq } from "drizzle-orm";
import { type LimitOverrides, type Plan, type Tenant, tenants } from "../../schema";
import { enqueueBillingSync, syncBilling } from "../billing/subscription-sync";
import type { Bindings } from "../env";
import type { KeyEnv } from "../shared/api-keys";
import type { Db } from "../shared/db";
import { newId } from "../shared/ids";
import { issueKey } from "./key-lifecycle";
import { projectKey, projectTenant } from "./projection";

/** The tenant to make. `email`: the owner's address (lower case), set by self-serve sign-up. */
export interface NewTenant {
  slug: string;
  name: string;
  overrides?: LimitOverrides;
  email?: string | null;
}

/** The tenant's first key: a live one from the admin API, a test one from sign-up. */
export interface FirstKey {
  env: KeyEnv;
  name: string;
  role: "admin" | "member";
}

/** A made tenant (as stored after its billing sync) and its first key's row and plaintext (shown once). */
export interface CreatedTenant {
  tenant: Tenant;
  key: Awaited<ReturnType<typeof issueKey>>;
}

/**
 * Makes the tenant on `plan` with its first key. Null when the slug or the email is taken (checked
 * by the insert itself, so two concurrent creates make one tenant); nothing is written then.
 */
export async function createTenant(
  env: Bindings,
  db: Db,
  plan: Plan,
  input: NewTenant,
  firstKey: FirstKey,
): Promise<CreatedTenant | null> {
  const created = await db.transaction(async (tx) => {
    const [tenant] = await tx
      .insert(tenants)
      .values({
        id: newId("ten"),
        slug: input.slug,
        name: input.name,
        planId: plan.id,
        overrides: input.overrides ?? {},
        email: input.email ?? null,
      })
      .onConflictDoNothing()
      .returning();
    if (!tenant) return null;
    const key = await issueKey(tx, tenant.id, {
      ...firstKey,
      ipAllowlist: [],
      expiresAt: null,
      rateLimit: null,
    });
    const sync = await enqueueBillingSync(tx, tenant.id, {
      planId: plan.id,
      pricingVersion: plan.pricingVersion,
      prorate: true,
    });
    return { tenant, key, sync };
  });
  if (!created) return null;
  await projectTenant(env, created.tenant, plan);
  await projectKey(env, created.key.row);
  // The Stripe customer (and subscription, on a metered plan) now; if Stripe is unreachable the
  // tenant is created anyway and the cron makes them (the tenant's billing sync says `pending`).
  await syncBilling(env, db, { ids: [created.sync] });
  const tenant =
    (await db.query.tenants.findFirst({ where: eq(tenants.id, created.tenant.id) })) ?? created.tenant;
  return { tenant, key: created.key };
}
