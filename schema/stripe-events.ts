/**
 * Stripe events received at `POST /webhooks/stripe`: one row per event id, written in the same
 * transaction as the change the event caused, so a redelivered event is a no-op and an event is
 * never half applied. `outcome` says what came of it (see workers/billing/webhooks/dispatch.ts).
 */
import { index, pgTable, text, timestamp } from "drizzle-orm/pg-core";

export const stripeEvents = pgTable(
  "stripe_events",
  {
    /** Stripe's event id (`evt_…`). */
    id: text("id").primaryKey(),
    type: text("type").notNull(),
    /** The event's `created` (Stripe's clock). */
    stripeCreatedAt: timestamp("stripe_created_at", { withTimezone: true }).notNull(),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
    /** The tenant the event's customer belongs to; null when none (unknown customer, ignored type). */
    tenantId: text("tenant_id"),
    /** `applied`, `ignored`, `unknown_customer`, `other_subscription`, `missing_object`. */
    outcome: text("outcome").notNull(),
  },
  (t) => [index("stripe_events_tenant_idx").on(t.tenantId, t.receivedAt)],
);

export type StripeEvent = typeof stripeEvents.$inferSelect;
