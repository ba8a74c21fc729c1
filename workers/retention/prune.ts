/**
 * The bounded deletes of retention: one statement removes at most `limit` expired rows of one kind,
 * so there is never one huge delete (no long lock, no giant WAL burst, no statement timeout) and a
 * backlog drains over several statements and runs. The audit logs are pruned chain by chain
 * (prune-audit.ts); everything else here.
 *
 * Shape of every statement: `DELETE … WHERE ctid = ANY (ARRAY(SELECT ctid … WHERE expired LIMIT n))`.
 * The inner select finds the rows through an index (per tenant for the usage tables, whose indexes
 * lead with tenant_id) and stops at `n`; the outer delete is a TID scan of exactly those rows. The
 * outer statement needs no second check of the condition: a row updated since the inner select (a
 * dead delivery replayed back to `pending`) has a new ctid and is skipped.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../shared/db";

/** Deletes the rows of `table` that `candidates` (a `SELECT ctid … LIMIT n`) picks; returns how many. */
async function deleteRows(db: Db, table: string, candidates: SQL): Promise<number> {
  const result = await db.execute(
    sql`DELETE FROM ${sql.identifier(table)} WHERE ctid = ANY (ARRAY(${candidates}))`,
  );
  return result.rowCount ?? 0;
}

/** One bounded statement per kind: deletes at most `limit` rows older than `cutoff`. */
export type PruneBatch = (db: Db, cutoff: Date, limit: number) => Promise<number>;

/** Raw usage events, by `ts`: per tenant through usage_events_tenant_ts_idx. */
export const pruneUsageEvents: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "usage_events",
    sql`SELECT e.ctid FROM tenants t CROSS JOIN LATERAL (
      SELECT ctid FROM usage_events WHERE tenant_id = t.id AND ts < ${cutoff} LIMIT ${limit}) e
    LIMIT ${limit}`,
  );

/** Hourly and daily rollups, by `bucket_start`: per tenant and granularity through the primary key. */
export const pruneUsageRollups: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "usage_rollups",
    sql`SELECT r.ctid FROM tenants t
      CROSS JOIN (VALUES ('hour'::rollup_granularity), ('day'::rollup_granularity)) g(granularity)
      CROSS JOIN LATERAL (
        SELECT ctid FROM usage_rollups
        WHERE tenant_id = t.id AND granularity = g.granularity AND bucket_start < ${cutoff} LIMIT ${limit}) r
    LIMIT ${limit}`,
  );

/** Delivery attempts, by `started_at`, except those of a delivery still pending (its log is live). */
export const pruneWebhookAttempts: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "webhook_attempts",
    sql`SELECT a.ctid FROM webhook_attempts a
    WHERE a.started_at < ${cutoff}
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id AND d.status = 'pending')
    LIMIT ${limit}`,
  );

/**
 * Deliveries created and last touched before the cutoff, never a pending one, and only once no
 * younger attempt is left: the attempts' own pruning has gone first, so the cascade to
 * webhook_attempts deletes nothing and the statement stays within its bound.
 */
export const pruneWebhookDeliveries: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "webhook_deliveries",
    sql`SELECT d.ctid FROM webhook_deliveries d
    WHERE d.created_at < ${cutoff} AND d.updated_at < ${cutoff} AND d.status <> 'pending'
      AND NOT EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.delivery_id = d.id)
    LIMIT ${limit}`,
  );

/** Events, by `created_at`, once none of their deliveries is left (a pending one keeps its event). */
export const pruneWebhookEvents: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "webhook_events",
    sql`SELECT e.ctid FROM webhook_events e
    WHERE e.created_at < ${cutoff} AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
    LIMIT ${limit}`,
  );

/**
 * Housekeeping: web sessions that expired or were revoked before the cutoff (30 days ago). The
 * table is small (one row per sign-in), so the scan without an index on the times is cheap.
 */
export const pruneWebSessions: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "web_sessions",
    sql`SELECT ctid FROM web_sessions WHERE expires_at < ${cutoff} OR revoked_at < ${cutoff} LIMIT ${limit}`,
  );

/** Shadow traffic's hourly counters, by `hour`: a few rows per route and hour, no index needed. */
export const pruneShadowResults: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "shadow_results",
    sql`SELECT ctid FROM shadow_results WHERE hour < ${cutoff} LIMIT ${limit}`,
  );

/** Shadow traffic's mismatch samples, by `at` (at most 20 per route and hour). */
export const pruneShadowMismatches: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "shadow_mismatches",
    sql`SELECT ctid FROM shadow_mismatches WHERE at < ${cutoff} LIMIT ${limit}`,
  );

/** Housekeeping: portal codes that expired before the cutoff (used or not, they sign nobody in). */
export const prunePortalCodes: PruneBatch = (db, cutoff, limit) =>
  deleteRows(
    db,
    "portal_codes",
    sql`SELECT ctid FROM portal_codes WHERE expires_at < ${cutoff} LIMIT ${limit}`,
  );
