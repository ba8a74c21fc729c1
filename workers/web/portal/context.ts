/**
 * What a portal page knows about its tenant: read as that tenant (row-level security), so a portal
 * session can never read another tenant's rows whatever ids a request carries.
 */

import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { type Plan, plans, type Tenant, tenants } from "../../../schema";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { withTenant } from "../../shared/db";

/** The signed-in tenant's id (set by `requireSession("portal", …)`). */
export function portalTenantId(c: Context<AppEnv>): string {
  const id = c.var.web?.session.tenantId;
  if (!id) throw new GatewayError("unauthorized", "Sign in first.");
  return id;
}

/** The signed-in tenant and its plan. */
export async function portalTenant(c: Context<AppEnv>): Promise<{ tenant: Tenant; plan: Plan }> {
  const tenantId = portalTenantId(c);
  const [row] = await withTenant(c.var.db, tenantId, (tx) =>
    tx
      .select({ tenant: tenants, plan: plans })
      .from(tenants)
      .innerJoin(plans, eq(plans.id, tenants.planId))
      .where(eq(tenants.id, tenantId)),
  );
  if (!row) throw new GatewayError("unauthorized", "Sign in first.");
  return row;
}
