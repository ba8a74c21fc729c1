/**
 * The audit trail, in its own Postgres schema (`audit`), apart from operational data and pruned on
 * its own schedule (workers/audit/): who did what, when, from where.
 *
 * Two logs, each hash-chained per chain (a tenant's id, or `_operator` for actions that belong to
 * no tenant, such as a plan change):
 * - `actions`: every change made through the admin API, the tenant API, the portal or the console,
 *   with the before/after of the fields it changed (kept 7 years by default);
 * - `requests`: every authenticated request, written by the usage pipeline (kept 1 year).
 *
 * An entry's `hash` is SHA-256 over its `prev_hash` and its canonical content
 * (workers/audit/chain.ts), so editing, inserting or deleting a row breaks every hash after it.
 * `chains` holds each chain's head (appends lock that row, so seqs never race) and the anchor left
 * by retention: the hash of the last pruned entry, from which what remains still verifies.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgSchema,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";

export const auditSchema = pgSchema("audit");

export const auditChains = auditSchema
  .table(
    "chains",
    {
      /** A tenant id, or `_operator`. */
      chain: text("chain").notNull(),
      /** `action` or `request`. */
      log: text("log").notNull(),
      /** The seq of the newest entry (0 = none yet). */
      seq: bigint("seq", { mode: "number" }).notNull().default(0),
      /** The hash of the newest entry (the genesis hash when none). */
      head: text("head").notNull(),
      /** Entries up to this seq were pruned by retention… */
      prunedSeq: bigint("pruned_seq", { mode: "number" }).notNull().default(0),
      /** …and this is the hash of the last of them: the first remaining entry's `prev_hash`. */
      prunedHead: text("pruned_head").notNull(),
    },
    (t) => [primaryKey({ columns: [t.chain, t.log] })],
  )
  .enableRLS();

export const auditActions = auditSchema
  .table(
    "actions",
    {
      chain: text("chain").notNull(),
      seq: bigint("seq", { mode: "number" }).notNull(),
      occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
      /** `admin` (the admin token), `key` (a tenant API key), `portal` / `console` (a web session), `system`. */
      actorType: text("actor_type").notNull(),
      /** The key id, the web session id, `admin_token`, or the system job's name. */
      actorId: text("actor_id").notNull(),
      /** Dotted verb: `key.create`, `tenant.update`, `webhook_endpoint.delete`… */
      action: text("action").notNull(),
      /** What it acted on: `[{ "type": "key", "id": "key_…" }, …]`. */
      targets: jsonb("targets").notNull(),
      /** The fields it changed: `{ "planId": { "before": "…", "after": "…" } }` (secrets never appear). */
      changes: jsonb("changes").notNull(),
      requestId: text("request_id"),
      clientIp: text("client_ip"),
      userAgent: text("user_agent"),
      prevHash: text("prev_hash").notNull(),
      hash: text("hash").notNull(),
    },
    (t) => [
      primaryKey({ columns: [t.chain, t.seq] }),
      index("actions_occurred_idx").on(t.occurredAt),
      index("actions_chain_occurred_idx").on(t.chain, t.occurredAt),
      pgPolicy("actions_self", { for: "select", to: tenantRole, using: sql`${t.chain} = ${currentTenant}` }),
    ],
  )
  .enableRLS();

export const auditRequests = auditSchema
  .table(
    "requests",
    {
      /** The tenant's id. */
      chain: text("chain").notNull(),
      seq: bigint("seq", { mode: "number" }).notNull(),
      /** The request id: one entry per request, however often the pipeline delivers it. */
      requestId: text("request_id").notNull().unique(),
      occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
      keyId: text("key_id").notNull(),
      method: text("method").notNull(),
      /** The route prefix (proxy) or the tenant API path. */
      route: text("route").notNull(),
      status: integer("status").notNull(),
      clientIp: text("client_ip"),
      userAgent: text("user_agent"),
      prevHash: text("prev_hash").notNull(),
      hash: text("hash").notNull(),
    },
    (t) => [
      primaryKey({ columns: [t.chain, t.seq] }),
      index("requests_occurred_idx").on(t.occurredAt),
      index("requests_chain_occurred_idx").on(t.chain, t.occurredAt),
      pgPolicy("requests_self", { for: "select", to: tenantRole, using: sql`${t.chain} = ${currentTenant}` }),
    ],
  )
  .enableRLS();

export type AuditAction = typeof auditActions.$inferSelect;
export type AuditRequest = typeof auditRequests.$inferSelect;
