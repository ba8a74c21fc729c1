/**
 * The numbers of the portal's overview, once for the page and its JSON twin
 * (`GET /portal/overview.json`), so the two never disagree:
 * - the live windows from the tenant object (`peek`: the same counters that enforce, the same
 *   answer as `GET /gateway/v1/usage`, charging nothing);
 * - requests, 4xx, 5xx and latency p50/p95/p99 per bucket, and a per-route table, from the usage
 *   rollups (read as the tenant, row-level security). Percentiles come from the rollups' merged
 *   latency histograms (workers/metering/latency-histogram.ts), never from averaging percentiles.
 */
import type { CurrentUsage } from "../../../durable-objects/tenant";
import type { Plan, Tenant } from "../../../schema";
import { tenantRecord } from "../../api/projection";
import type { Bindings } from "../../env";
import { addHistograms, emptyHistogram, percentile } from "../../metering/latency-histogram";
import { rollupPoints } from "../../metering/usage-queries";
import type { Db } from "../../shared/db";
import { peek, tenantConfig } from "../../shared/tenant-client";
import { bucketStarts, type OverviewRange } from "./usage-range";

/** Latency percentiles in ms (bucket upper bounds), null without requests. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** One bucket of the traffic chart, every route together. */
export interface TrafficPoint extends Percentiles {
  bucketStart: string;
  requests: number;
  errors4xx: number;
  errors5xx: number;
}

/** One row of the per-endpoint table: a route-table prefix over the whole range. */
export interface EndpointRow {
  route: string;
  requests: number;
  errors: number;
  errors4xx: number;
  errors5xx: number;
  /** errors / requests, 0..1. */
  errorRate: number;
  p95: number | null;
  /** Billable units. */
  units: number;
}

/** One row of the windows table, as shown (the page and its refresh script print these). */
export interface WindowRow {
  window: "burst" | "daily" | "monthly";
  used: number;
  limit: number | null;
  remaining: number | null;
  /** When it resets, in words: "full in 42 s", or the UTC instant of the period's end. */
  resets: string;
  /** used / limit in whole percent, 0..100; null without a limit. */
  percent: number | null;
}

/** Everything the overview shows. */
export interface OverviewData {
  tenant: { id: string; slug: string; name: string; status: string };
  plan: string;
  /** Exactly what `GET /gateway/v1/usage` answers for live traffic. */
  windows: CurrentUsage;
  windowRows: WindowRow[];
  range: { preset: string; granularity: "hour" | "day"; from: string; to: string };
  series: TrafficPoint[];
  endpoints: EndpointRow[];
  generatedAt: string;
}

const utc = (unixSeconds: number) =>
  `${new Date(unixSeconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;

/** A duration in words: "42 s", "3 min 5 s", "2 h 30 min". */
function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return s > 0 ? `${m} min ${s} s` : `${m} min`;
  return `${s} s`;
}

function percent(used: number, limit: number | null): number | null {
  if (limit === null) return null;
  if (limit <= 0) return 100;
  return Math.min(100, Math.max(0, Math.round((used / limit) * 100)));
}

/** The windows as table rows; the burst bucket's "used" is what is missing from a full bucket. */
export function windowRows(w: CurrentUsage): WindowRow[] {
  const burstUsed = w.burst.limit - w.burst.remaining;
  return [
    {
      window: "burst",
      used: burstUsed,
      limit: w.burst.limit,
      remaining: w.burst.remaining,
      resets: w.burst.resetSeconds === 0 ? "full now" : `full in ${duration(w.burst.resetSeconds)}`,
      percent: percent(burstUsed, w.burst.limit),
    },
    ...(["daily", "monthly"] as const).map((name) => ({
      window: name,
      used: w[name].used,
      limit: w[name].limit,
      remaining: w[name].remaining,
      resets: utc(w[name].resetAt),
      percent: percent(w[name].used, w[name].limit),
    })),
  ];
}

function percentiles(histogram: readonly number[]): Percentiles {
  return {
    p50: percentile(histogram, 0.5),
    p95: percentile(histogram, 0.95),
    p99: percentile(histogram, 0.99),
  };
}

/** Reads the overview's numbers for a tenant the caller has already authorised. */
export async function overviewData(
  env: Bindings,
  db: Db,
  row: { tenant: Tenant; plan: Plan },
  range: OverviewRange,
): Promise<OverviewData> {
  const { tenant, plan } = row;
  // Live traffic's windows: the tenant object adopts this config only if it is not older than its own.
  const [windows, points] = await Promise.all([
    peek(env, tenant.id, tenantConfig(tenantRecord(tenant, plan))),
    rollupPoints(db, tenant.id, { granularity: range.granularity, from: range.from, to: range.to }),
  ]);

  const buckets = new Map<string, { requests: number; e4: number; e5: number; histogram: number[] }>();
  for (const start of bucketStarts(range)) {
    buckets.set(new Date(start).toISOString(), { requests: 0, e4: 0, e5: 0, histogram: emptyHistogram() });
  }
  const routes = new Map<
    string,
    { requests: number; e4: number; e5: number; units: number; histogram: number[] }
  >();
  for (const p of points) {
    const e4 = p.statuses["4xx"] ?? 0;
    const e5 = p.statuses["5xx"] ?? 0;
    const b = buckets.get(p.bucketStart);
    if (b) {
      b.requests += p.requests;
      b.e4 += e4;
      b.e5 += e5;
      b.histogram = addHistograms(b.histogram, p.histogram);
    }
    const r = routes.get(p.route) ?? { requests: 0, e4: 0, e5: 0, units: 0, histogram: emptyHistogram() };
    r.requests += p.requests;
    r.e4 += e4;
    r.e5 += e5;
    r.units += p.billableUnits;
    r.histogram = addHistograms(r.histogram, p.histogram);
    routes.set(p.route, r);
  }

  return {
    tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, status: tenant.status },
    plan: plan.name,
    windows,
    windowRows: windowRows(windows),
    range: {
      preset: range.preset,
      granularity: range.granularity,
      from: range.from.toISOString(),
      to: range.to.toISOString(),
    },
    series: [...buckets].map(([bucketStart, b]) => ({
      bucketStart,
      requests: b.requests,
      errors4xx: b.e4,
      errors5xx: b.e5,
      ...percentiles(b.histogram),
    })),
    endpoints: [...routes]
      .map(([route, r]) => ({
        route,
        requests: r.requests,
        errors: r.e4 + r.e5,
        errors4xx: r.e4,
        errors5xx: r.e5,
        errorRate: r.requests === 0 ? 0 : (r.e4 + r.e5) / r.requests,
        p95: percentile(r.histogram, 0.95),
        units: r.units,
      }))
      .sort((a, b) => b.requests - a.requests || a.route.localeCompare(b.route)),
    generatedAt: new Date().toISOString(),
  };
}
