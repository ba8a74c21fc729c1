/**
 * Billable units waiting to be reported to Stripe: one row per tenant × hour × `seq`. The consumer
 * adds the units of the events it inserts to the tenant-hour's open row (`closed_at` null), in the
 * same transaction as the events. The reporter closes a row when it first claims it (the hour has
 * ended, plus a lateness margin) and sends it as ONE Stripe meter event whose `identifier` is the
 * row id (tenant, hour and seq), so a retried report is deduplicated by Stripe. Units that arrive
 * for an hour whose row is closed open the next `seq`: a delta, reported on its own.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  index,
  integer,
  pgEnum,
  pgPolicy,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const outboxState = pgEnum("outbox_state", ["pending", "sent", "failed"]);

export const billingOutbox = pgTable(
  "billing_outbox",
  {
    /** Also the Stripe meter event `identifier`: `gwh:<tenant id>:<hour, unix seconds>:<seq>`. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    /** The hour the units were used in; the meter event's timestamp. */
    hour: timestamp("hour", { withTimezone: true }).notNull(),
    /** 0 for an hour's first row; each later row of the same tenant-hour is a delta (units that came late). */
    seq: integer("seq").notNull().default(0),
    units: bigint("units", { mode: "number" }).notNull(),
    /** Null while the consumer still adds units to the row; set when the reporter first claims it. */
    closedAt: timestamp("closed_at", { withTimezone: true }),
    /** `failed`: never billed (past Stripe's 35-day window, or refused): shown by reconciliation. */
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
    uniqueIndex("billing_outbox_tenant_hour_seq_idx").on(t.tenantId, t.hour, t.seq),
    /** At most one open row per tenant-hour: the consumer's upsert target. */
    uniqueIndex("billing_outbox_open_idx").on(t.tenantId, t.hour).where(sql`closed_at IS NULL`),
    pgPolicy("billing_outbox_tenant", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();
