/** Tenants: the provider's customers. RLS lets a tenant read only its own row. */
import { sql } from "drizzle-orm";
import { jsonb, pgEnum, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { plans } from "./plans";
import { currentTenant, tenantRole } from "./roles";

export const tenantStatus = pgEnum("tenant_status", ["active", "suspended", "past_due"]);

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
    status: tenantStatus("status").notNull().default("active"),
    planId: text("plan_id")
      .notNull()
      .references(() => plans.id),
    overrides: jsonb("overrides").$type<LimitOverrides>().notNull().default({}),
    stripeCustomerId: text("stripe_customer_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    pgPolicy("tenants_self", { for: "select", to: tenantRole, using: sql`${t.id} = ${currentTenant}` }),
  ],
).enableRLS();

export type Tenant = typeof tenants.$inferSelect;
