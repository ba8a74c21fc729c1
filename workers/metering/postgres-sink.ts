/**
 * Writes a batch of usage events to Postgres in one transaction: the events in one statement
 * (one row per event id, ON CONFLICT DO NOTHING), then the rollups and billing outbox rows for
 * exactly the events that statement inserted. A redelivered batch inserts nothing and adds nothing.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../shared/db";
import { rollUp } from "./rollup";
import type { UsageEvent } from "./usage-event";

export interface SinkResult {
  /** Ids newly inserted by this call. */
  inserted: string[];
  /** Ids already stored (a redelivery). */
  duplicates: string[];
  /** Ids whose tenant does not exist: they can never be stored (poison). */
  unknownTenant: string[];
}

export async function writeUsageBatch(db: Db, batch: readonly UsageEvent[]): Promise<SinkResult> {
  // The same event twice in one batch is stored (and counted) once.
  const events = [...new Map(batch.map((e) => [e.id, e])).values()];
  if (events.length === 0) return { inserted: [], duplicates: [], unknownTenant: [] };
  return await db.transaction(async (tx) => {
    const result = await tx.execute<{ id: string; outcome: "inserted" | "unknown_tenant" }>(sql`
      WITH input AS (
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS u(
          id text, "tenantId" text, "keyId" text, env text, method text, route text, status int,
          billable boolean, units int, "bytesIn" bigint, "bytesOut" bigint, "latencyMs" int, ts timestamptz)
      ), inserted AS (
        INSERT INTO usage_events (id, tenant_id, key_id, env, method, route, status, billable, units, bytes_in, bytes_out, latency_ms, ts)
        SELECT id, "tenantId", "keyId", env::key_env, method, route, status, billable, units, "bytesIn", "bytesOut", "latencyMs", ts
        FROM input WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = input."tenantId")
        ON CONFLICT (id) DO NOTHING
        RETURNING id
      )
      SELECT id, 'inserted' AS outcome FROM inserted
      UNION ALL
      SELECT id, 'unknown_tenant' FROM input WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = input."tenantId")`);

    const inserted = new Set(result.rows.filter((r) => r.outcome === "inserted").map((r) => r.id));
    const unknownTenant = result.rows.filter((r) => r.outcome === "unknown_tenant").map((r) => r.id);
    const { rollups, outbox } = rollUp(events.filter((e) => inserted.has(e.id)));

    if (rollups.length > 0) {
      await tx.execute(sql`
        INSERT INTO usage_rollups (tenant_id, granularity, bucket_start, route, status_class, requests,
          billable_requests, billable_units, bytes_in, bytes_out, latency_histogram)
        SELECT "tenantId", granularity::rollup_granularity, "bucketStart", route, "statusClass", requests,
          "billableRequests", "billableUnits", "bytesIn", "bytesOut", "latencyHistogram"
        FROM jsonb_to_recordset(${JSON.stringify(rollups)}::jsonb) AS r(
          "tenantId" text, granularity text, "bucketStart" timestamptz, route text, "statusClass" smallint,
          requests bigint, "billableRequests" bigint, "billableUnits" bigint, "bytesIn" bigint, "bytesOut" bigint,
          "latencyHistogram" int[])
        ON CONFLICT (tenant_id, granularity, bucket_start, route, status_class) DO UPDATE SET
          requests = usage_rollups.requests + excluded.requests,
          billable_requests = usage_rollups.billable_requests + excluded.billable_requests,
          billable_units = usage_rollups.billable_units + excluded.billable_units,
          bytes_in = usage_rollups.bytes_in + excluded.bytes_in,
          bytes_out = usage_rollups.bytes_out + excluded.bytes_out,
          latency_histogram = ARRAY(
            SELECT a + b FROM unnest(usage_rollups.latency_histogram, excluded.latency_histogram)
              WITH ORDINALITY AS h(a, b, i) ORDER BY i)`);
    }
    if (outbox.length > 0) {
      await tx.execute(sql`
        INSERT INTO billing_outbox (id, tenant_id, hour, units)
        SELECT 'gwu_' || replace(gen_random_uuid()::text, '-', ''), "tenantId", hour, units
        FROM jsonb_to_recordset(${JSON.stringify(outbox)}::jsonb) AS o("tenantId" text, hour timestamptz, units bigint)`);
    }
    const duplicates = batch
      .map((e) => e.id)
      .filter((id) => !inserted.has(id) && !unknownTenant.includes(id));
    return { inserted: [...inserted], duplicates, unknownTenant };
  });
}
