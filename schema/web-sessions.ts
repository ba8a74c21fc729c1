/**
 * Sessions of the two web faces: the developer portal (one tenant) and the operator console.
 * The browser holds a random token in an httpOnly cookie; only its SHA-256 is stored here, so a copy
 * of this table signs nobody in. Logout sets `revokedAt`; a session past `expiresAt` is refused.
 * Never read by the tenant role: the Worker looks sessions up by hash before it knows a tenant.
 */
import { sql } from "drizzle-orm";
import { check, index, pgEnum, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { tenants } from "./tenants";

export const webSessionKind = pgEnum("web_session_kind", ["portal", "console"]);

/** How the session began: an operator-minted link, a sign-up or sign-in magic link, the admin token. */
export const webSessionVia = pgEnum("web_session_via", ["link", "signup", "signin", "admin_token"]);

export const webSessions = pgTable(
  "web_sessions",
  {
    /** `wss_…`: the session's public id (audit trail, revocation); never the cookie's value. */
    id: text("id").primaryKey(),
    /** SHA-256 (hex) of the cookie's token. */
    tokenHash: text("token_hash").notNull().unique(),
    kind: webSessionKind("kind").notNull(),
    /** The only tenant a portal session ever sees; null for the console. */
    tenantId: text("tenant_id").references(() => tenants.id),
    via: webSessionVia("via").notNull(),
    /** Who signed in by email (sign-up / sign-in links). */
    email: text("email"),
    clientIp: text("client_ip"),
    userAgent: text("user_agent"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    index("web_sessions_tenant_idx").on(t.tenantId),
    check("web_sessions_kind_tenant", sql`(${t.kind} = 'portal') = (${t.tenantId} IS NOT NULL)`),
  ],
).enableRLS();

export type WebSession = typeof webSessions.$inferSelect;
