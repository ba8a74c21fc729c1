/**
 * `Idempotency-Key` records of the control plane (admin and tenant API POSTs), kept 24 h. The proxy
 * keeps its own in the tenant Durable Object; these live in Postgres next to the rows they protect.
 *
 * A record is claimed with `INSERT … ON CONFLICT DO NOTHING` (no transaction is held open while the
 * request runs). The key itself is stored only as a SHA-256, and the recorded body only encrypted
 * under a key derived from the Idempotency-Key (see workers/api/idempotency.ts): a created API key's
 * plaintext is in that body. Tenants have no grant on this table.
 */
import { index, integer, jsonb, pgEnum, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

export const idempotencyState = pgEnum("idempotency_state", ["in_flight", "done"]);

export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    /** `admin` for the admin API, `tenant:<id>` for a tenant's own API. */
    scope: text("scope").notNull(),
    /** SHA-256 (hex) of the Idempotency-Key value. */
    keyHash: text("key_hash").notNull(),
    /** SHA-256 of method, path with query and body (durable-objects/idempotency.ts `fingerprint`). */
    fingerprint: text("fingerprint").notNull(),
    state: idempotencyState("state").notNull().default("in_flight"),
    /** Who holds (or held) the lease: only its holder may record the response or release the key. */
    leaseToken: text("lease_token").notNull(),
    /** In flight until then; after it, a retry may take the key over (the holder died). */
    leaseUntil: timestamp("lease_until", { withTimezone: true }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    responseStatus: integer("response_status"),
    responseHeaders: jsonb("response_headers").$type<[string, string][]>(),
    /** base64 of IV ‖ AES-256-GCM ciphertext of the response body. */
    responseBody: text("response_body"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.scope, t.keyHash] }),
    index("idempotency_keys_expires_idx").on(t.expiresAt),
  ],
);

export type IdempotencyKeyRow = typeof idempotencyKeys.$inferSelect;
