/**
 * What a Stripe event handler is: it reads the event's object as Stripe has it now, finds the
 * tenant, and says what came of it (`EventEffect`), whose change the dispatcher (dispatch.ts) runs
 * in the transaction that records the event. Types only, so the handlers and the dispatcher's map
 * of them depend on this file and not on each other.
 */
import type Stripe from "stripe";
import type { Bindings } from "../../env";
import type { Db, Tx } from "../../shared/db";

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
  /**
   * The change, run in the transaction that records the event; it may push to the tenant object (a
   * failure rolls both back). It records the tenant's events of the change there too (so a
   * redelivered Stripe event emits nothing twice) and returns their webhook deliveries, which the
   * dispatcher queues after the commit.
   */
  apply?: (tx: Tx) => Promise<string[]>;
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
