/** Plans: the limits and entitlements a tenant buys, and the Stripe price that bills them. */
import { integer, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/** A plan's sandbox limits; absent fields take the live limits' numbers. */
export interface SandboxLimits {
  burstCapacity?: number;
  refillTokens?: number;
  refillPeriodSeconds?: number;
  dailyQuota?: number | null;
  monthlyQuota?: number | null;
}

export const plans = pgTable("plans", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  /** Token bucket: at most `burstCapacity` requests at once, refilled by `refillTokens` every `refillPeriodSeconds`. */
  burstCapacity: integer("burst_capacity").notNull(),
  refillTokens: integer("refill_tokens").notNull(),
  refillPeriodSeconds: integer("refill_period_seconds").notNull(),
  /** Calendar-UTC quotas in cost units; null = unlimited. */
  dailyQuota: integer("daily_quota"),
  monthlyQuota: integer("monthly_quota"),
  /** Route entitlements this plan may call (matched against the route table's `entitlement`). */
  entitlements: jsonb("entitlements").$type<string[]>().notNull().default([]),
  stripePriceId: text("stripe_price_id"),
  /**
   * Limits of test (`gw_test_`) traffic, which spends its own bucket and quotas, never the live
   * ones. Fields left out (or null here) take the numbers of the live limits.
   */
  sandboxLimits: jsonb("sandbox_limits").$type<SandboxLimits>(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export type Plan = typeof plans.$inferSelect;
