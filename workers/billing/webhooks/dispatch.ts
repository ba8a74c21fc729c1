/**
 * Applies a verified Stripe event exactly once. The event's type picks a handler (the map below);
 * the handler reads the object's current state from Stripe and finds the tenant, then says what
 * came of it (`EventEffect`). The effect's change runs in ONE Postgres transaction with the
 * `stripe_events` row that records the event id: a redelivery (or a concurrent duplicate, which
 * waits on the row's primary key) finds the row and changes nothing; a change that fails (the
 * tenant object unreachable) rolls the row back with it, so Stripe's retry applies it again. The
 * tenant's events of the change (workers/events/) are recorded in that transaction too — so each is
 * emitted once per Stripe event — and their deliveries queued after the commit.
 *
 * A type with no handler is recorded as `ignored` and answered 200, as Stripe asks of endpoints
 * that receive events they do not use.
 */
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { stripeEvents } from "../../../schema";
import { dispatchDeliveries } from "../../events/emit";
import { log } from "../../log";
import type { Db } from "../../shared/db";
import { onCheckoutCompleted } from "./checkout";
import type { EventEffect, EventHandler, EventOutcome, HandlerContext } from "./event-handler";
import { onInvoice } from "./invoices";
import { onSubscription } from "./subscriptions";

/** Event type → handler. Types not listed are recorded as `ignored`. */
export const EVENT_HANDLERS: Readonly<Record<string, EventHandler>> = {
  "invoice.finalized": onInvoice,
  "invoice.paid": onInvoice,
  "invoice.payment_failed": onInvoice,
  "customer.subscription.updated": onSubscription,
  "customer.subscription.deleted": onSubscription,
  "checkout.session.completed": onCheckoutCompleted,
};

export type DeliveryResult = { duplicate: true } | { duplicate: false; outcome: EventOutcome };

async function alreadyRecorded(db: Db, id: string): Promise<boolean> {
  const rows = await db.execute(sql`select 1 from stripe_events where id = ${id}`);
  return rows.rows.length > 0;
}

/** Applies the event once; a duplicate is a no-op. Throws `service_unavailable` when Stripe or the tenant object is unreachable. */
export async function dispatchEvent(
  event: Stripe.Event,
  ctx: HandlerContext,
  handlers: Readonly<Record<string, EventHandler>> = EVENT_HANDLERS,
): Promise<DeliveryResult> {
  // Cheap check first: a redelivery makes no Stripe call. The insert below is what guarantees once.
  if (await alreadyRecorded(ctx.db, event.id)) return { duplicate: true };
  const handler = handlers[event.type];
  const effect: EventEffect = handler ? await handler(event, ctx) : { outcome: "ignored", tenantId: null };
  const recorded = await ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(stripeEvents)
      .values({
        id: event.id,
        type: event.type,
        stripeCreatedAt: new Date(event.created * 1000),
        tenantId: effect.tenantId,
        outcome: effect.outcome,
      })
      .onConflictDoNothing({ target: stripeEvents.id })
      .returning({ id: stripeEvents.id });
    if (!row) return null;
    return effect.apply ? await effect.apply(tx) : [];
  });
  if (!recorded) return { duplicate: true };
  await dispatchDeliveries(ctx.env, recorded);
  const level = effect.outcome === "unknown_customer" ? "warn" : "info";
  log[level]("stripe event", {
    event_id: event.id,
    type: event.type,
    ...(effect.tenantId ? { tenant_id: effect.tenantId } : {}),
    outcome: effect.outcome,
  });
  return { duplicate: false, outcome: effect.outcome };
}
