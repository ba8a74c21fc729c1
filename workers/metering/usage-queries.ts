/**
 * Usage reads for the tenant and admin usage APIs. Every query runs under the tenant's
 * row-level security (withTenant), for admins too: one code path, one isolation rule.
 */
import { sql } from "drizzle-orm";
import type { Bindings } from "../env";
import { log } from "../log";
import { type Db, openDb, withTenant } from "../shared/db";
import { addHistograms, emptyHistogram, percentile } from "./latency-histogram";

const HOUR_MS = 3_600_000;

export interface TimeseriesQuery {
  granularity: "hour" | "day";
  from: Date;
  to: Date;
  route?: string;
}

export interface TimeseriesPoint {
  bucketStart: string;
  route: string;
  requests: number;
  billableRequests: number;
  billableUnits: number;
  bytesIn: number;
  bytesOut: number;
  /** Requests per status class: `2xx`, `4xx`, `5xx`. */
  statuses: Record<string, number>;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
}

type RollupRow = {
  bucket_start: string | Date;
  route: string;
  status_class: number;
  requests: string;
  billable_requests: string;
  billable_units: string;
  bytes_in: string;
  bytes_out: string;
  latency_histogram: number[];
};

/** One bucket and route of the rollups, with its merged latency histogram (not yet percentiles). */
export type RollupPoint = Omit<TimeseriesPoint, "latencyMs"> & { histogram: number[] };

/**
 * Usage per bucket and route from the rollups, status classes summed and histograms merged. Callers
 * that aggregate further (the portal's totals per bucket and per route) merge the histograms
 * themselves, since percentiles cannot be added.
 */
export async function rollupPoints(db: Db, tenantId: string, q: TimeseriesQuery): Promise<RollupPoint[]> {
  // Every bucket that overlaps [from, to), whole: a `from` inside a bucket (a day asked for from noon)
  // takes that bucket from its start, never leaves it out.
  const width = q.granularity === "hour" ? HOUR_MS : 24 * HOUR_MS;
  const first = new Date(Math.floor(q.from.getTime() / width) * width);
  const rows = await withTenant(db, tenantId, async (tx) => {
    const result = await tx.execute<RollupRow>(sql`
      SELECT bucket_start, route, status_class, requests, billable_requests, billable_units, bytes_in, bytes_out, latency_histogram
      FROM usage_rollups
      WHERE granularity = ${q.granularity}::rollup_granularity AND bucket_start >= ${first} AND bucket_start < ${q.to}
        ${q.route ? sql`AND route = ${q.route}` : sql``}
      ORDER BY bucket_start, route, status_class`);
    return result.rows;
  });
  const points = new Map<string, RollupPoint>();
  for (const r of rows) {
    const bucketStart = new Date(r.bucket_start).toISOString();
    const id = `${bucketStart}|${r.route}`;
    let p = points.get(id);
    if (!p) {
      p = {
        bucketStart,
        route: r.route,
        requests: 0,
        billableRequests: 0,
        billableUnits: 0,
        bytesIn: 0,
        bytesOut: 0,
        statuses: {},
        histogram: emptyHistogram(),
      };
      points.set(id, p);
    }
    p.requests += Number(r.requests);
    p.billableRequests += Number(r.billable_requests);
    p.billableUnits += Number(r.billable_units);
    p.bytesIn += Number(r.bytes_in);
    p.bytesOut += Number(r.bytes_out);
    p.statuses[`${r.status_class}xx`] = (p.statuses[`${r.status_class}xx`] ?? 0) + Number(r.requests);
    p.histogram = addHistograms(p.histogram, r.latency_histogram);
  }
  return [...points.values()];
}

/** Usage per bucket and route from the rollups, with latency percentiles from the merged histograms. */
export async function timeseries(db: Db, tenantId: string, q: TimeseriesQuery): Promise<TimeseriesPoint[]> {
  return (await rollupPoints(db, tenantId, q)).map(({ histogram, ...p }) => ({
    ...p,
    latencyMs: {
      p50: percentile(histogram, 0.5),
      p95: percentile(histogram, 0.95),
      p99: percentile(histogram, 0.99),
    },
  }));
}

export const EXPORT_COLUMNS = [
  "id",
  "ts",
  "key_id",
  "env",
  "method",
  "route",
  "status",
  "billable",
  "units",
  "bytes_in",
  "bytes_out",
  "latency_ms",
] as const;

type ExportRow = Record<(typeof EXPORT_COLUMNS)[number], string | number | boolean | Date>;

const PAGE_SIZE = 1000;

function csvField(value: unknown): string {
  const text = value instanceof Date ? value.toISOString() : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function formatRow(row: ExportRow, format: "csv" | "ndjson"): string {
  if (format === "csv") return `${EXPORT_COLUMNS.map((c) => csvField(row[c])).join(",")}\n`;
  const out: Record<string, unknown> = {};
  for (const c of EXPORT_COLUMNS) out[c] = row[c] instanceof Date ? (row[c] as Date).toISOString() : row[c];
  out.ts = new Date(row.ts as string).toISOString();
  return `${JSON.stringify(out)}\n`;
}

/**
 * Streams the tenant's usage events in [from, to) as CSV or NDJSON, one keyset-paginated page of
 * 1,000 rows at a time: memory stays bounded however large the range. The stream opens (and
 * closes) its own connection, since it outlives the request handler.
 */
export function exportUsage(
  env: Bindings,
  tenantId: string,
  q: { from: Date; to: Date; format: "csv" | "ndjson" },
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let handle: ReturnType<typeof openDb> | undefined;
  let cursor: { ts: string; id: string } | null = null;
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      handle = openDb(env);
      if (q.format === "csv") controller.enqueue(encoder.encode(`${EXPORT_COLUMNS.join(",")}\n`));
    },
    async pull(controller) {
      if (done || !handle) return;
      try {
        const after = cursor;
        const rows = await withTenant(handle.db, tenantId, async (tx) => {
          const result = await tx.execute<ExportRow>(sql`
            SELECT id, ts, key_id, env, method, route, status, billable, units, bytes_in, bytes_out, latency_ms
            FROM usage_events
            WHERE ts >= ${q.from} AND ts < ${q.to}
              ${after ? sql`AND (ts, id) > (${after.ts}::timestamptz, ${after.id})` : sql``}
            ORDER BY ts, id LIMIT ${PAGE_SIZE}`);
          return result.rows;
        });
        if (rows.length > 0) {
          controller.enqueue(encoder.encode(rows.map((r) => formatRow(r, q.format)).join("")));
          const last = rows[rows.length - 1] as ExportRow;
          cursor = { ts: new Date(last.ts as string).toISOString(), id: String(last.id) };
        }
        if (rows.length < PAGE_SIZE) {
          done = true;
          controller.close();
          await handle.close();
        }
      } catch (error) {
        log.error("usage export failed", { tenant_id: tenantId, error: String(error) });
        controller.error(error);
        await handle.close();
      }
    },
    async cancel() {
      done = true;
      await handle?.close();
    },
  });
}
