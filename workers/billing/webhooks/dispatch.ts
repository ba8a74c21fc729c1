/**
 * Applies a verified Stripe event exactly once. The event's type picks a handler (the map below);
 * the handler reads the object's current state from Stripe and finds the tenant, then says what
 * came of it (`EventEffect`). The effect's change runs in ONE Postgres transaction with the
 * `stripe_events` row that records the event id: a redelivery (or a concurrent duplicate, which
 * waits on the row's primary key) finds the row and changes nothing; a change that fails (the
 * tenant object unreachable) rolls the row back with it, so Stripe's retry applies it again.
 *
 * A type with no handler is recorded as `ignored` and answered 200, as Stripe asks of endpoints
 * that receive events they do not use.
 */
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { stripeEvents } from "../../../schema";
import type { Bindings } from "../../env";
import { log } from "../../log";
import type { Db, Tx } from "../../shared/db";
import { onCheckoutCompleted } from "./checkout";
import { onInvoice } from "./invoices";
import { onSubscription } from "./subscriptions";

/** What came of an event, as recorded in `stripe_events.outcome`. */
export type EventOutcome =
  /** The tenant's state now matches Stripe's current object (which may mean nothing changed). */
  | "applied"
  /** A type the gateway does not act on. */
  | "ignored"
  /** The event's customer is no tenant's: logged, nothing changed. */
  | "unknown_customer"
  /** A subscription that is not the tenant's current one (e.g. canceled by a move to a free plan). */
  | "other_subscription"
  /** Stripe no longer has the event's object. */
  | "missing_object";

export interface EventEffect {
  outcome: EventOutcome;
  tenantId: string | null;
  /** The change, run in the transaction that records the event; it may push to the tenant object (a failure rolls both back). */
  apply?: (tx: Tx) => Promise<void>;
}

export interface HandlerContext {
  env: Bindings;
  db: Db;
  stripe: Stripe;
  /** Epoch ms of this delivery (the dunning clock). */
  now: number;
  /** Dunning grace period in ms (`BILLING_GRACE_PERIOD_S`). */
  graceMs: number;
}

export type EventHandler = (event: Stripe.Event, ctx: HandlerContext) => Promise<EventEffect>;

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
    if (!row) return false;
    if (effect.apply) await effect.apply(tx);
    return true;
  });
  if (!recorded) return { duplicate: true };
  const level = effect.outcome === "unknown_customer" ? "warn" : "info";
  log[level]("stripe event", {
    event_id: event.id,
    type: event.type,
    ...(effect.tenantId ? { tenant_id: effect.tenantId } : {}),
    outcome: effect.outcome,
  });
  return { duplicate: false, outcome: effect.outcome };
}
