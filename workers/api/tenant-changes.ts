/**
 * The operator's changes to a tenant, shared by the admin API (workers/api/admin/tenants.ts,
 * credits.ts, portal-sessions.ts) and the console's forms (workers/web/console/tenant.tsx), so a
 * change made either way moves Postgres, KV, the tenant object and Stripe exactly alike, and tells
 * the tenant alike (`plan.changed`, `tenant.status.changed`: recorded with the change, dispatched
 * after it; none when a patch leaves the plan or the status as it was).
 */
import type { z } from "@hono/zod-openapi";
import { eq, inArray, type SQL, sql } from "drizzle-orm";
import { type Plan, plans, type Tenant, tenants } from "../../schema";
import { isPrepaid, recordAndApply } from "../billing/credits/ledger";
import { enqueueBillingSync, syncBilling } from "../billing/subscription-sync";
import type { Bindings } from "../env";
import { GatewayError } from "../errors";
import type { NewEvent } from "../events/catalog";
import { dispatchDeliveries, recordEvents } from "../events/emit";
import type { Db, Tx } from "../shared/db";
import { newId } from "../shared/ids";
import { mintCode } from "../web/portal-codes";
import { projectTenant } from "./projection";
import type { TenantPatch } from "./schemas";

/**
 * The SQL that merges an overrides patch (RFC 7396) into the stored object in the same UPDATE, so two
 * concurrent PATCHes of different fields both stick. Overrides are flat, so a flat merge is the RFC's.
 */
function mergeOverrides(patch: Record<string, number | null | undefined> | null): SQL {
  if (patch === null) return sql`'{}'::jsonb`;
  const removed = Object.keys(patch).filter((k) => patch[k] === null);
  const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null && v !== undefined));
  const kept = removed.reduce<SQL>((acc, field) => sql`(${acc} - ${field}::text)`, sql`${tenants.overrides}`);
  return sql`${kept} || ${JSON.stringify(set)}::jsonb`;
}

/** The plan, or a 400 naming `planId`. */
export async function requirePlan(db: Db, planId: string): Promise<Plan> {
  const plan = await db.query.plans.findFirst({ where: eq(plans.id, planId) });
  if (!plan)
    throw new GatewayError("validation_failed", "No such plan.", {
      errors: [{ path: "planId", message: "unknown plan" }],
    });
  return plan;
}

/** The tenant's events of a patch: a plan move and a status change, each only when it changed something. */
async function tenantChangeEvents(tx: Tx, before: Tenant, after: Tenant): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  if (after.planId !== before.planId) {
    const named = await tx
      .select({ id: plans.id, name: plans.name })
      .from(plans)
      .where(inArray(plans.id, [before.planId, after.planId]));
    const plan = (id: string) => ({ id, name: named.find((p) => p.id === id)?.name ?? id });
    events.push({
      tenantId: after.id,
      type: "plan.changed",
      data: { from: plan(before.planId), to: plan(after.planId) },
    });
  }
  if (after.status !== before.status) {
    events.push({
      tenantId: after.id,
      type: "tenant.status.changed",
      data: { from: before.status, to: after.status, reason: after.statusReason },
    });
  }
  return events;
}

/**
 * Applies a tenant patch (name, plan, status, overrides as a merge patch): Postgres in one
 * transaction (with a billing sync row on a plan move), then the tenant object and KV — so the next
 * request sees it whatever Stripe does — then Stripe. A status set here is the operator's
 * (`statusReason: operator`; billing never lifts it). Emits `plan.changed` and
 * `tenant.status.changed` for what actually changed. 404 for an unknown tenant.
 */
export async function updateTenant(
  env: Bindings,
  db: Db,
  id: string,
  input: z.infer<typeof TenantPatch>,
): Promise<Tenant> {
  const { overrides, ...patch } = input;
  const target = patch.planId ? await requirePlan(db, patch.planId) : null;
  const updated = await db.transaction(async (tx) => {
    const [before] = await tx.select().from(tenants).where(eq(tenants.id, id)).for("update");
    if (!before) return null;
    const [row] = await tx
      .update(tenants)
      .set({
        ...patch,
        // The operator's status is theirs: billing events never lift it (workers/billing/dunning.ts).
        ...(patch.status === undefined
          ? {}
          : { statusReason: "operator" as const, pastDueSince: null, graceUntil: null }),
        ...(overrides === undefined ? {} : { overrides: mergeOverrides(overrides) }),
        updatedAt: new Date(),
      })
      .where(eq(tenants.id, id))
      .returning();
    const sync =
      target && target.id !== before.planId
        ? await enqueueBillingSync(tx, id, {
            planId: target.id,
            pricingVersion: target.pricingVersion,
            prorate: true,
          })
        : null;
    if (!row) return null;
    return { row, sync, deliveries: await recordEvents(tx, await tenantChangeEvents(tx, before, row)) };
  });
  if (!updated) throw new GatewayError("not_found", "No such tenant.");
  // The tenant object first: the next request sees the new limits whatever Stripe does.
  await projectTenant(env, updated.row, await requirePlan(db, updated.row.planId));
  await dispatchDeliveries(env, updated.deliveries);
  if (!updated.sync) return updated.row;
  await syncBilling(env, db, { ids: [updated.sync] });
  return (await db.query.tenants.findFirst({ where: eq(tenants.id, id) })) ?? updated.row;
}

/**
 * Brings a tenant's Stripe side to its current plan again (after a sync that `failed`: Stripe
 * refused, and the cron does not retry refusals): a new billing sync row, applied now. The row's
 * own idempotency keys and the search for an existing subscription make it safe to repeat.
 */
export async function retryBillingSync(env: Bindings, db: Db, id: string): Promise<Tenant> {
  const sync = await db.transaction(async (tx) => {
    const [tenant] = await tx.select().from(tenants).where(eq(tenants.id, id)).for("update");
    if (!tenant) return null;
    const [plan] = await tx.select().from(plans).where(eq(plans.id, tenant.planId));
    if (!plan) return null;
    return await enqueueBillingSync(tx, id, {
      planId: plan.id,
      pricingVersion: plan.pricingVersion,
      prorate: true,
    });
  });
  if (!sync) throw new GatewayError("not_found", "No such tenant.");
  await syncBilling(env, db, { ids: [sync] });
  const row = await db.query.tenants.findFirst({ where: eq(tenants.id, id) });
  if (!row) throw new GatewayError("not_found", "No such tenant.");
  return row;
}

/** A manual credit adjustment: who and why, recorded in the ledger and applied to the tenant object. */
export interface CreditAdjustment {
  units: number;
  reason: string;
  actor: string;
}

/**
 * Records and applies a credit adjustment of a prepaid tenant. 404 unknown tenant; 409 not prepaid,
 * or a debit past the balance (nothing recorded); 503 when the object is unreachable (recorded, the
 * cron applies it).
 */
export async function adjustCredits(env: Bindings, db: Db, id: string, input: CreditAdjustment) {
  const tenant = await db.query.tenants.findFirst({
    where: (t, { eq }) => eq(t.id, id),
    columns: { id: true },
  });
  if (!tenant) throw new GatewayError("not_found", "No such tenant.");
  if (!(await isPrepaid(db, id)))
    throw new GatewayError("conflict", "The tenant's plan is not prepaid: it has no credit balance.");
  const result = await recordAndApply(env, db, {
    id: newId("cadj"),
    tenantId: id,
    kind: "adjustment",
    units: input.units,
    reason: input.reason,
    actor: input.actor,
  });
  if (result.outcome === "insufficient") {
    throw new GatewayError(
      "conflict",
      `The balance is ${result.balance} units: a debit of ${-input.units} would take it below zero.`,
    );
  }
  if (result.outcome === "pending") {
    throw new GatewayError(
      "service_unavailable",
      "Recorded, but the tenant's balance is unreachable right now; it is applied within minutes.",
      { headers: { "retry-after": "60" } },
    );
  }
  return { entry: result.entry, balance: result.balance };
}

/** A one-time portal link for a tenant (`/portal/enter?code=…` on `origin`), 15 minutes. 404 unknown tenant. */
export async function mintPortalLink(
  db: Db,
  tenantId: string,
  origin: string,
): Promise<{ url: string; expiresAt: Date }> {
  const tenant = await db.query.tenants.findFirst({
    where: (t, { eq }) => eq(t.id, tenantId),
    columns: { id: true },
  });
  if (!tenant) throw new GatewayError("not_found", "No such tenant.");
  const { code, expiresAt } = await mintCode(db, { purpose: "link", tenantId: tenant.id });
  const url = new URL("/portal/enter", origin);
  url.searchParams.set("code", code);
  return { url: url.toString(), expiresAt };
}
