/**
 * Stores shadow comparisons (workers/edge/shadow.ts) carried by usage events: adds them to the
 * route-hour counters (`shadow_results`) and keeps a bounded sample of the mismatches
 * (`shadow_mismatches`, at most MAX_MISMATCH_SAMPLES per route and hour, one per request id).
 *
 * Called by the Postgres sink, in its transaction, with exactly the events that transaction newly
 * inserted: a redelivered event adds nothing, so the counts never double. The hour is the event's
 * (the admission's), as for the usage rollups.
 */
import { sql } from "drizzle-orm";
import type { ShadowDiff } from "../../schema/shadow";
import type { Tx } from "../shared/db";
import type { UsageEvent } from "./usage-event";

/** Mismatch samples kept per route and hour; the counters count every one. */
export const MAX_MISMATCH_SAMPLES = 20;

const HOUR_MS = 3_600_000;

/** The route-hour an event counts in: the hour of its admission. */
const routeHour = (route: string, at: number) =>
  `${route}|${new Date(Math.floor(at / HOUR_MS) * HOUR_MS).toISOString()}`;

export interface ShadowResultRow {
  route: string;
  hour: string;
  compared: number;
  matched: number;
  mismatched: number;
  failed: number;
  primaryLatencyMs: number;
  shadowLatencyMs: number;
}

export interface MismatchSample {
  requestId: string;
  route: string;
  tenantId: string;
  method: string;
  path: string;
  diff: ShadowDiff;
  primaryLatencyMs: number;
  shadowLatencyMs: number;
  at: string;
}

/** Folds events' comparisons into route-hour counters, and lists their mismatches in order. Pure. */
export function foldShadow(events: readonly UsageEvent[]): {
  results: ShadowResultRow[];
  mismatches: MismatchSample[];
} {
  const results = new Map<string, ShadowResultRow>();
  const mismatches: MismatchSample[] = [];
  for (const e of events) {
    const s = e.shadow;
    if (!s) continue;
    const id = routeHour(e.route, Date.parse(e.ts));
    let row = results.get(id);
    if (!row) {
      row = {
        route: e.route,
        hour: id.slice(e.route.length + 1),
        compared: 0,
        matched: 0,
        mismatched: 0,
        failed: 0,
        primaryLatencyMs: 0,
        shadowLatencyMs: 0,
      };
      results.set(id, row);
    }
    row.compared++;
    row[s.outcome]++;
    // Latencies are summed over the copies that answered (the average is over matched + mismatched).
    if (s.outcome !== "failed") {
      row.primaryLatencyMs += s.primaryMs;
      row.shadowLatencyMs += s.shadowMs;
    }
    if (s.outcome === "mismatched")
      mismatches.push({
        requestId: e.id,
        route: e.route,
        tenantId: e.tenantId,
        method: e.method,
        path: s.path,
        diff: s.diff ?? {},
        primaryLatencyMs: s.primaryMs,
        shadowLatencyMs: s.shadowMs,
        at: e.ts,
      });
  }
  return { results: [...results.values()], mismatches };
}

/**
 * Adds the comparisons of `inserted` (events this transaction newly stored) to the counters, and
 * their mismatches to the sample while its route-hour holds fewer than MAX_MISMATCH_SAMPLES. The
 * counter row is locked by the upsert until commit, so concurrent batches take turns per route-hour.
 */
export async function writeShadowResults(tx: Tx, inserted: readonly UsageEvent[]): Promise<void> {
  const { results, mismatches } = foldShadow(inserted);
  if (results.length === 0) return;
  const after = await tx.execute<{ route: string; hour: string; mismatched: number }>(sql`
    INSERT INTO shadow_results (route, hour, compared, matched, mismatched, failed, primary_latency_ms, shadow_latency_ms)
    SELECT route, hour, compared, matched, mismatched, failed, "primaryLatencyMs", "shadowLatencyMs"
    FROM jsonb_to_recordset(${JSON.stringify(results)}::jsonb) AS r(route text, hour timestamptz,
      compared int, matched int, mismatched int, failed int, "primaryLatencyMs" bigint, "shadowLatencyMs" bigint)
    ON CONFLICT (route, hour) DO UPDATE SET
      compared = shadow_results.compared + excluded.compared,
      matched = shadow_results.matched + excluded.matched,
      mismatched = shadow_results.mismatched + excluded.mismatched,
      failed = shadow_results.failed + excluded.failed,
      primary_latency_ms = shadow_results.primary_latency_ms + excluded.primary_latency_ms,
      shadow_latency_ms = shadow_results.shadow_latency_ms + excluded.shadow_latency_ms
    RETURNING route, extract(epoch FROM hour)::bigint * 1000 AS hour, mismatched`);
  if (mismatches.length === 0) return;
  // Room left in each route-hour's sample: the cap minus the mismatches counted before this batch.
  const inBatch = new Map(results.map((r) => [`${r.route}|${r.hour}`, r.mismatched]));
  const room = new Map<string, number>();
  for (const row of after.rows) {
    const key = routeHour(row.route, Number(row.hour));
    room.set(key, MAX_MISMATCH_SAMPLES - (Number(row.mismatched) - (inBatch.get(key) ?? 0)));
  }
  const kept = mismatches.filter((m) => {
    const key = routeHour(m.route, Date.parse(m.at));
    const left = room.get(key) ?? 0;
    room.set(key, left - 1);
    return left > 0;
  });
  if (kept.length === 0) return;
  await tx.execute(sql`
    INSERT INTO shadow_mismatches (request_id, route, tenant_id, method, path, diff, primary_latency_ms, shadow_latency_ms, at)
    SELECT "requestId", route, "tenantId", method, path, diff, "primaryLatencyMs", "shadowLatencyMs", at
    FROM jsonb_to_recordset(${JSON.stringify(kept)}::jsonb) AS m("requestId" text, route text, "tenantId" text,
      method text, path text, diff jsonb, "primaryLatencyMs" int, "shadowLatencyMs" int, at timestamptz)
    ON CONFLICT (request_id) DO NOTHING`);
}
