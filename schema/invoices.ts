/**
 * Invoices: the gateway's copy of each Stripe invoice of a tenant, written by the Stripe webhook
 * receiver from the invoice's current state (never from a stale event snapshot) and read by the
 * billing views, so a tenant's invoice list needs no Stripe call. Amounts in the currency's minor unit.
 */
import { sql } from "drizzle-orm";
import { bigint, index, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const invoices = pgTable(
  "invoices",
  {
    /** Stripe's invoice id (`in_…`). */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    stripeSubscriptionId: text("stripe_subscription_id"),
    /** Null until finalized. */
    number: text("number"),
    /** Stripe's status: draft, open, paid, uncollectible or void. */
    status: text("status").notNull(),
    currency: text("currency").notNull(),
    subtotal: bigint("subtotal", { mode: "number" }).notNull(),
    total: bigint("total", { mode: "number" }).notNull(),
    amountDue: bigint("amount_due", { mode: "number" }).notNull(),
    amountPaid: bigint("amount_paid", { mode: "number" }).notNull(),
    amountRemaining: bigint("amount_remaining", { mode: "number" }).notNull(),
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    periodEnd: timestamp("period_end", { withTimezone: true }).notNull(),
    hostedInvoiceUrl: text("hosted_invoice_url"),
    invoicePdf: text("invoice_pdf"),
    /** When Stripe created the invoice. */
    stripeCreatedAt: timestamp("stripe_created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("invoices_tenant_created_idx").on(t.tenantId, t.stripeCreatedAt),
    pgPolicy("invoices_self", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

export type Invoice = typeof invoices.$inferSelect;
