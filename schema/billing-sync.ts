/**
 * The billing sync outbox: one row per change that the Stripe side of a tenant must follow (the
 * tenant was created, its plan changed, its plan's pricing changed). A row brings Stripe to the
 * row's target — customer, and on a metered plan a subscription on the plan version's prices —
 * in the request that made it, or later from the cron when Stripe was off or unreachable. The
 * row id is part of every Stripe idempotency key the row uses, so a retry never makes a second
 * subscription and a later change is never answered with an earlier one's replay.
 */
import { boolean, index, integer, pgEnum, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { tenants } from "./tenants";

/** `superseded`: a newer change of the same tenant came first; it brings Stripe to its own target. */
export const billingSyncRowState = pgEnum("billing_sync_row_state", [
  "pending",
  "ok",
  "failed",
  "superseded",
]);

export const billingSync = pgTable(
  "billing_sync",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    planId: text("plan_id").notNull(),
    pricingVersion: integer("pricing_version").notNull(),
    /** Move a subscription now with proration (true), or at its period end without (false). */
    prorate: boolean("prorate").notNull(),
    state: billingSyncRowState("state").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    /** Due from then: now, a backoff after a failure, or a subscription's period end. */
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    lastError: text("last_error"),
    doneAt: timestamp("done_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("billing_sync_due_idx").on(t.state, t.nextAttemptAt),
    index("billing_sync_tenant_idx").on(t.tenantId, t.createdAt),
  ],
);

export type BillingSyncRow = typeof billingSync.$inferSelect;
