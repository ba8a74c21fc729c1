/** Tenants: the provider's customers. RLS lets a tenant read only its own row. */
import { sql } from "drizzle-orm";
import { bigint, integer, jsonb, pgEnum, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { plans } from "./plans";
import { currentTenant, tenantRole } from "./roles";

export const tenantStatus = pgEnum("tenant_status", ["active", "suspended", "past_due"]);

/**
 * Who set the tenant's status: the operator (admin API) or billing (Stripe webhooks, dunning).
 * Billing never lifts a status the operator set (a manual suspension survives an `invoice.paid`).
 */
export const tenantStatusReason = pgEnum("tenant_status_reason", ["operator", "billing"]);

/** Whether the tenant's Stripe side matches its plan: `pending` until the billing sync has made it. */
export const billingSyncState = pgEnum("billing_sync_state", ["pending", "ok", "failed"]);

/** Per-tenant overrides of the plan's limits; absent fields fall back to the plan. */
export interface LimitOverrides {
  burstCapacity?: number;
  refillTokens?: number;
  refillPeriodSeconds?: number;
  dailyQuota?: number | null;
  monthlyQuota?: number | null;
}

export const tenants = pgTable(
  "tenants",
  {
    id: text("id").primaryKey(),
    /** Short public handle (`acme`), shown in `X-RateLimit-Tenant`. */
    slug: text("slug").notNull().unique(),
    name: text("name").notNull(),
    /** The owner's address (lower case) when the tenant signed itself up; portal sign-in mails it a link. */
    email: text("email").unique(),
    status: tenantStatus("status").notNull().default("active"),
    statusReason: tenantStatusReason("status_reason").notNull().default("operator"),
    /** Dunning (workers/billing/dunning.ts): when the first unpaid payment failed; null when paid up. */
    pastDueSince: timestamp("past_due_since", { withTimezone: true }),
    /** Dunning: until when a past-due tenant's requests still pass (with a warning); then 402. */
    graceUntil: timestamp("grace_until", { withTimezone: true }),
    planId: text("plan_id")
      .notNull()
      .references(() => plans.id),
    overrides: jsonb("overrides").$type<LimitOverrides>().notNull().default({}),
    /**
     * The version of the config the edge and the tenant object decide with: bumped by a trigger on
     * every change of the tenant or its plan (to the clock's ms, or by one when two changes fall in
     * the same ms), so the object never mistakes a newer config for one it already has.
     */
    configVersion: bigint("config_version", { mode: "number" }).notNull().default(0),
    stripeCustomerId: text("stripe_customer_id"),
    /** The Stripe subscription of a tenant on a metered plan (items: base fee + usage). */
    stripeSubscriptionId: text("stripe_subscription_id"),
    /** The plan and pricing version the Stripe subscription bills by now (null: none yet). */
    billingPlanId: text("billing_plan_id"),
    billingPricingVersion: integer("billing_pricing_version"),
    /** End of the subscription's current period: when a `period_end` pricing change applies. */
    billingPeriodEnd: timestamp("billing_period_end", { withTimezone: true }),
    /**
     * When the subscription started (Stripe's `start_date`): its first period begins here, so an
     * hour that began before it (the tenant was made mid-hour, or the subscription came late) is
     * billed as of this instant, in the first period — by the reporter and the billing view alike.
     */
    billingStartedAt: timestamp("billing_started_at", { withTimezone: true }),
    /** The latest billing sync's state and error (schema/billing-sync.ts), shown by the admin API. */
    billingSync: billingSyncState("billing_sync").notNull().default("pending"),
    billingError: text("billing_error"),
    /** Held by the billing sync that is changing this tenant's Stripe side; one at a time, lapses after 5 min. */
    billingLockedUntil: timestamp("billing_locked_until", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    pgPolicy("tenants_self", { for: "select", to: tenantRole, using: sql`${t.id} = ${currentTenant}` }),
  ],
).enableRLS();

export type Tenant = typeof tenants.$inferSelect;
