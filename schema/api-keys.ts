/**
 * API keys. Only the SHA-256 of a key is stored; `prefix` + `last4` are for display.
 * Rotation keeps lineage (`rotatedFromId`) and gives the old key an `expiresAt` grace period.
 */
import { sql } from "drizzle-orm";
import { index, jsonb, pgEnum, pgPolicy, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const keyEnv = pgEnum("key_env", ["live", "test"]);
export const keyRole = pgEnum("key_role", ["admin", "member"]);

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    hash: text("hash").notNull().unique(),
    prefix: text("prefix").notNull(),
    last4: text("last4").notNull(),
    name: text("name"),
    env: keyEnv("env").notNull(),
    role: keyRole("role").notNull().default("member"),
    /** CIDR blocks (v4/v6); empty = any address. */
    ipAllowlist: jsonb("ip_allowlist").$type<string[]>().notNull().default([]),
    /** Optional per-key token bucket, tighter than the tenant's. */
    rateLimit: jsonb("rate_limit").$type<{
      burstCapacity: number;
      refillTokens: number;
      refillPeriodSeconds: number;
    }>(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    rotatedFromId: text("rotated_from_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("api_keys_tenant_idx").on(t.tenantId),
    // The key.expiring cron (workers/events/key-expiry.ts) runs every minute: keys that will end,
    // and the successors that tell a rotation's old half apart.
    index("api_keys_expiring_idx")
      .on(t.expiresAt)
      .where(sql`${t.revokedAt} IS NULL AND ${t.expiresAt} IS NOT NULL`),
    index("api_keys_rotated_from_idx").on(t.rotatedFromId).where(sql`${t.rotatedFromId} IS NOT NULL`),
    pgPolicy("api_keys_tenant", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

export type ApiKey = typeof apiKeys.$inferSelect;
