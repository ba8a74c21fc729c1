/**
 * Billable units waiting to be reported to Stripe. The consumer adds one row per tenant × hour per
 * batch in the same statement as the events; the reporter sends each row as one Stripe meter event
 * whose `identifier` is the row id, so a retried report is deduplicated by Stripe.
 */
import { sql } from "drizzle-orm";
import { bigint, index, integer, pgEnum, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const outboxState = pgEnum("outbox_state", ["pending", "sent", "failed"]);

export const billingOutbox = pgTable(
  "billing_outbox",
  {
    /** Also the Stripe meter event `identifier`. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    /** The hour the units were used in; the meter event's timestamp. */
    hour: timestamp("hour", { withTimezone: true }).notNull(),
    units: bigint("units", { mode: "number" }).notNull(),
    state: outboxState("state").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    /** A reporter run holds the row until then; a crashed run's rows come back after it. */
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    lastError: text("last_error"),
    sentAt: timestamp("sent_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("billing_outbox_due_idx").on(t.state, t.nextAttemptAt),
    index("billing_outbox_tenant_hour_idx").on(t.tenantId, t.hour),
    pgPolicy("billing_outbox_tenant", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();
