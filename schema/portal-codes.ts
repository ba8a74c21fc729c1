/**
 * One-time codes that become a portal session: links an operator mints for a tenant
 * (`POST /admin/v1/tenants/:id/portal-sessions`), and the magic links of self-serve sign-up and
 * sign-in. Only the code's SHA-256 is stored; a code is spent by setting `usedAt` in the same
 * statement that checks it (`UPDATE … WHERE used_at IS NULL AND expires_at > now() RETURNING`), so two
 * clicks of one link make one session.
 */
import { sql } from "drizzle-orm";
import { check, index, pgEnum, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { tenants } from "./tenants";

export const portalCodePurpose = pgEnum("portal_code_purpose", ["link", "signup", "signin"]);

export const portalCodes = pgTable(
  "portal_codes",
  {
    /** `pcd_…` */
    id: text("id").primaryKey(),
    /** SHA-256 (hex) of the code in the URL. */
    codeHash: text("code_hash").notNull().unique(),
    purpose: portalCodePurpose("purpose").notNull(),
    /** The tenant the code signs into; null for a sign-up until it makes the tenant. */
    tenantId: text("tenant_id").references(() => tenants.id),
    /** The address a sign-up or sign-in link was mailed to. */
    email: text("email"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
  },
  (t) => [
    index("portal_codes_tenant_idx").on(t.tenantId),
    check(
      "portal_codes_purpose_fields",
      sql`(${t.purpose} = 'signup' OR ${t.tenantId} IS NOT NULL) AND (${t.purpose} = 'link' OR ${t.email} IS NOT NULL)`,
    ),
  ],
).enableRLS();

export type PortalCode = typeof portalCodes.$inferSelect;
