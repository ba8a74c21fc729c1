/**
 * `customer.subscription.updated` / `.deleted`, and the dunning step every billing event ends in:
 * the tenant's status follows its subscription's CURRENT status (read from Stripe, not taken from
 * the event), through the pure state machine in workers/billing/dunning.ts. The new status reaches
 * the tenant object (projectTenant) inside the transaction that records the event, so the very
 * next request sees it, and a push that fails rolls the event back for Stripe to redeliver. A status
 * change is also the tenant's `tenant.status.changed` (reason `billing`), recorded in that transaction.
 */
import { eq } from "drizzle-orm";
import type Stripe from "stripe";
import { plans, tenants } from "../../../schema";
import { projectTenant } from "../../api/projection";
import { recordEvents } from "../../events/emit";
import type { Db, Tx } from "../../shared/db";
import { type DunningState, nextDunningState, signalOf } from "../dunning";
import type { EventEffect, EventHandler, HandlerContext } from "./event-handler";
import { currentSubscription, idOf } from "./stripe-reads";

/** The tenant whose Stripe customer this is, or null. */
export async function tenantOfCustomer(db: Db, customerId: string | null) {
  if (!customerId) return null;
  return (await db.query.tenants.findFirst({ where: eq(tenants.stripeCustomerId, customerId) })) ?? null;
}

const ms = (d: Date | null) => d?.getTime() ?? null;
const date = (t: number | null) => (t === null ? null : new Date(t));

/**
 * In `tx`: moves the tenant's status by its subscription's current status (dunning), keeps
 * `billing_period_end` current, and pushes a status change to the tenant object before commit. Returns
 * the webhook deliveries of the status change's event (none when the status stayed).
 */
export async function applySubscription(
  tx: Tx,
  ctx: HandlerContext,
  tenantId: string,
  subscription: Stripe.Subscription,
): Promise<string[]> {
  const [tenant] = await tx.select().from(tenants).where(eq(tenants.id, tenantId)).for("update");
  if (!tenant) return [];
  const state: DunningState = {
    status: tenant.status,
    statusReason: tenant.statusReason,
    pastDueSince: ms(tenant.pastDueSince),
    graceUntil: ms(tenant.graceUntil),
  };
  const next = nextDunningState(state, signalOf(subscription.status), ctx.now, ctx.graceMs);
  const periodEnd = subscription.items.data[0]?.current_period_end;
  const periodEndAt = periodEnd ? new Date(periodEnd * 1000) : tenant.billingPeriodEnd;
  if (!next && ms(periodEndAt) === ms(tenant.billingPeriodEnd)) return [];
  const [updated] = await tx
    .update(tenants)
    .set({
      ...(next
        ? {
            status: next.status,
            statusReason: next.statusReason,
            pastDueSince: date(next.pastDueSince),
            graceUntil: date(next.graceUntil),
          }
        : {}),
      billingPeriodEnd: periodEndAt,
      updatedAt: new Date(ctx.now),
    })
    .where(eq(tenants.id, tenantId))
    .returning();
  if (!next || !updated) return [];
  const [plan] = await tx.select().from(plans).where(eq(plans.id, updated.planId));
  if (plan) await projectTenant(ctx.env, updated, plan);
  return await recordEvents(tx, [
    {
      tenantId,
      type: "tenant.status.changed",
      data: { from: tenant.status, to: updated.status, reason: "billing" },
      at: new Date(ctx.now),
    },
  ]);
}

/** The tenant's own current subscription, re-read; other subscriptions of the customer change nothing. */
export const onSubscription: EventHandler = async (event, ctx): Promise<EventEffect> => {
  const id = (event.data.object as { id?: unknown }).id;
  if (typeof id !== "string") return { outcome: "missing_object", tenantId: null };
  const subscription = await currentSubscription(ctx.stripe, id);
  if (!subscription) return { outcome: "missing_object", tenantId: null };
  const tenant = await tenantOfCustomer(ctx.db, idOf(subscription.customer));
  if (!tenant) return { outcome: "unknown_customer", tenantId: null };
  if (tenant.stripeSubscriptionId !== subscription.id)
    return { outcome: "other_subscription", tenantId: tenant.id };
  return {
    outcome: "applied",
    tenantId: tenant.id,
    apply: (tx) => applySubscription(tx, ctx, tenant.id, subscription),
  };
};
