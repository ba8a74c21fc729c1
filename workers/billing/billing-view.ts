/**
 * A tenant's billing view (`GET /gateway/v1/billing` and its admin twin): the plan and pricing its
 * subscription bills by, its current period, the billable units in it so far, and the statement
 * (workers/billing/statement.ts) they make. The tenant's rows are read under its row-level security
 * (withTenant), for admins too, and filtered by tenant explicitly as well; plans and their pricing
 * versions are the operator's catalogue, not tenant data, and are read as such.
 */
import { and, eq, sql } from "drizzle-orm";
import type { CreditBalance } from "../../durable-objects/credits";
import {
  type Plan,
  type PlanPricing,
  planPricingVersions,
  plans,
  type Tenant,
  tenants,
  usageRollups,
} from "../../schema";
import type { Bindings } from "../env";
import { type Db, type Tx, withTenant } from "../shared/db";
import { creditBalance } from "../shared/tenant-client";
import { calendarMonth, type Period, subscriptionPeriod } from "./period";
import { type Statement, statement } from "./statement";

export interface BillingView extends Statement {
  plan: { id: string; name: string; model: PlanPricing["model"]; pricingVersion: number };
  period: { start: string; end: string };
  /** The instant the statement is computed at. */
  asOf: string;
  /** A prepaid tenant's credit balance, as its tenant object holds it now; null on other plans. */
  credits: CreditBalance | null;
}

/**
 * The period the tenant is billed for now: its subscription's current period (counted from the
 * period end the last billing sync stored), or, with no subscription yet, the calendar month (UTC).
 */
function billingPeriod(tenant: Tenant, now: number): Period {
  return tenant.stripeSubscriptionId && tenant.billingPeriodEnd
    ? subscriptionPeriod(tenant.billingPeriodEnd.getTime(), now)
    : calendarMonth(now);
}

/**
 * Billable units Stripe's meter sums for the period: the reporter stamps each tenant-hour at the
 * hour's start or the subscription's start (`startedAt`), whichever is later, so an hour counts in
 * the period that instant falls in — one that began before the subscription, in its first period.
 */
async function unitsInPeriod(tx: Tx, tenantId: string, p: Period, startedAt: Date | null): Promise<number> {
  const stamp = sql`greatest(${usageRollups.bucketStart}, ${startedAt}::timestamptz)`;
  const rows = await tx
    .select({ units: sql<string>`coalesce(sum(${usageRollups.billableUnits}), 0)::text` })
    .from(usageRollups)
    .where(
      and(
        eq(usageRollups.tenantId, tenantId),
        eq(usageRollups.granularity, "hour"),
        sql`${stamp} >= ${new Date(p.start)}`,
        sql`${stamp} < ${new Date(p.end)}`,
      ),
    );
  return Number(rows[0]?.units ?? 0);
}

/**
 * The plan and pricing the tenant is billed by: what its subscription bills by now (an older pricing
 * version until a `period_end` change applies), or, with no subscription, its plan's current pricing.
 */
async function billedPricing(
  db: Db,
  tenant: Tenant,
): Promise<{ plan: Plan; version: number; pricing: PlanPricing }> {
  const subscribed = tenant.stripeSubscriptionId !== null && tenant.billingPlanId !== null;
  const planId = subscribed && tenant.billingPlanId ? tenant.billingPlanId : tenant.planId;
  const plan = await db.query.plans.findFirst({ where: eq(plans.id, planId) });
  if (!plan) throw new Error(`plan ${planId} of tenant ${tenant.id} is gone`);
  const version = (subscribed ? tenant.billingPricingVersion : null) ?? plan.pricingVersion;
  if (version === plan.pricingVersion) return { plan, version, pricing: plan.pricing };
  const old = await db.query.planPricingVersions.findFirst({
    where: and(eq(planPricingVersions.planId, plan.id), eq(planPricingVersions.version, version)),
  });
  if (!old) throw new Error(`pricing version ${version} of plan ${plan.id} is gone`);
  return { plan, version, pricing: old.pricing };
}

/** The tenant's billing view at `now`, or null when there is no such tenant. */
export async function billingView(
  env: Pick<Bindings, "TENANT">,
  db: Db,
  tenantId: string,
  now: number,
): Promise<BillingView | null> {
  // One transaction for the tenant row and its units; the catalogue after it (one connection).
  const found = await withTenant(db, tenantId, async (tx) => {
    const [tenant] = await tx.select().from(tenants).where(eq(tenants.id, tenantId));
    if (!tenant) return null;
    const period = billingPeriod(tenant, now);
    const startedAt = tenant.stripeSubscriptionId ? tenant.billingStartedAt : null;
    return { tenant, period, used: await unitsInPeriod(tx, tenantId, period, startedAt) };
  });
  if (!found) return null;
  const { plan, version, pricing } = await billedPricing(db, found.tenant);
  return {
    plan: { id: plan.id, name: plan.name, model: pricing.model, pricingVersion: version },
    period: {
      start: new Date(found.period.start).toISOString(),
      end: new Date(found.period.end).toISOString(),
    },
    asOf: new Date(now).toISOString(),
    ...statement(pricing, found.period, found.used, now),
    credits: pricing.model === "prepaid" ? await creditBalance(env, tenantId) : null,
  };
}
