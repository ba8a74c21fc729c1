/** Plans: the limits and entitlements a tenant buys, and what they cost (versioned pricing). */
import { integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/** One overage tier: units up to `upTo` past the included units (null = no end); minor units. */
export interface PriceTier {
  upTo: number | null;
  unitAmount: number;
  flatAmount: number;
}

/**
 * What a plan costs, as stored (validated on the way in by `PlanPricingInput` in
 * workers/billing/pricing.ts, whose output is exactly this type). Every amount is an integer in the
 * currency's minor unit.
 */
export type PlanPricing =
  | { model: "free" }
  | { model: "metered"; currency: string; baseFee: number; includedUnits: number; tiers: PriceTier[] }
  | { model: "prepaid"; currency: string; creditPack: { units: number; amount: number } };

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
  /**
   * What the plan costs (workers/billing/pricing.ts). Stripe prices are immutable, so every change
   * makes a new `pricingVersion`, with its own Stripe prices (`gw_<planId>_v<version>_…`).
   */
  pricing: jsonb("pricing").$type<PlanPricing>().notNull().default({ model: "free" }),
  pricingVersion: integer("pricing_version").notNull().default(1),
  /**
   * Limits of test (`gw_test_`) traffic, which spends its own bucket and quotas, never the live
   * ones. Fields left out (or null here) take the numbers of the live limits.
   */
  sandboxLimits: jsonb("sandbox_limits").$type<SandboxLimits>(),
  /**
   * How the tenant object admits live traffic: `exact` (one object call per request, every limit
   * exact) or `leased` (the object hands each isolate a short lease of tokens drawn from the
   * remaining budget, so a hot tenant is not capped by one object; quotas and credits stay exact,
   * the token bucket may overshoot by a documented bound). durable-objects/lease.ts.
   */
  admissionMode: text("admission_mode", { enum: ["exact", "leased"] })
    .notNull()
    .default("exact"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export type Plan = typeof plans.$inferSelect;

/** Every pricing version a plan has had: subscriptions still on an older version bill by it. */
export const planPricingVersions = pgTable(
  "plan_pricing_versions",
  {
    planId: text("plan_id")
      .notNull()
      .references(() => plans.id),
    version: integer("version").notNull(),
    pricing: jsonb("pricing").$type<PlanPricing>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.planId, t.version] })],
);
