/**
 * The credit ledger: every movement of a prepaid tenant's credits, signed, in units. The tenant
 * object holds the live balance (durable-objects/credits.ts); this is the record it reconciles with:
 * - `grant`: a paid Checkout Session (units, amount, currency, session and event ids);
 * - `usage`: one row per tenant-hour, settled by the cron from billable usage rows (negative);
 * - `refund`: credits taken back with a refunded payment (negative);
 * - `adjustment`: an operator's manual grant or debit, with a mandatory reason and who made it.
 * Grants, refunds and adjustments reach the object under the row's id (idempotent there);
 * `appliedAt` is set once the object has them, so a crash in between is healed by the cron.
 */
import { sql } from "drizzle-orm";
import { check, index, integer, pgEnum, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const creditEntryKind = pgEnum("credit_entry_kind", ["grant", "usage", "refund", "adjustment"]);

export const creditLedger = pgTable(
  "credit_ledger",
  {
    /** `cg_<checkout session id>`, `cu_<tenant>_<hour epoch s>`, `cadj_…`: the object's grant id too. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: creditEntryKind("kind").notNull(),
    /** Signed: what the entry adds to the balance. */
    units: integer("units").notNull(),
    /** What was paid, in the currency's minor unit (grants and refunds). */
    amount: integer("amount"),
    currency: text("currency"),
    stripeCheckoutSessionId: text("stripe_checkout_session_id").unique(),
    stripeEventId: text("stripe_event_id"),
    /** The hour a `usage` row settles. */
    hour: timestamp("hour", { withTimezone: true }),
    reason: text("reason"),
    /** Who made an adjustment. */
    actor: text("actor"),
    /** When the tenant object applied it (usage rows: when settled; the object spent them already). */
    appliedAt: timestamp("applied_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    index("credit_ledger_tenant_created_idx").on(t.tenantId, t.createdAt),
    check("credit_ledger_units_nonzero", sql`${t.units} <> 0`),
    check(
      "credit_ledger_kind_fields",
      sql`(${t.kind} <> 'usage' OR ${t.hour} IS NOT NULL) AND (${t.kind} <> 'adjustment' OR (${t.reason} IS NOT NULL AND ${t.actor} IS NOT NULL))`,
    ),
    pgPolicy("credit_ledger_self", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

export type CreditEntry = typeof creditLedger.$inferSelect;
