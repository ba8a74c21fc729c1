/**
 * `GET /console/endpoints`: which routes carry load and which fail, across every tenant, over the
 * last 24 hours (hourly rollups) or 7 / 30 days (daily rollups): per route-table prefix its
 * requests, billable units, 4xx, 5xx, 5xx rate, p95 latency and its top tenants by requests,
 * busiest first. A route whose 5xx rate is above 1 % is marked failing (a class and the word).
 * Three grouped queries whatever the number of tenants: counts, merged histograms, top tenants.
 */
import { sql } from "drizzle-orm";
import type { Hono } from "hono";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { HISTOGRAM_SIZE, percentile } from "../../metering/latency-histogram";
import type { Db } from "../../shared/db";
import { num, TableHead } from "../layout";
import { consolePage } from "./console-page";
import { count, ms, rate, utcDay } from "./format";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** A route fails when more than this share of its requests are 5xx. */
export const FAILING_5XX_RATE = 0.01;
const TOP_TENANTS = 3;

const RANGES = {
  "24h": {
    label: "Last 24 hours",
    granularity: "hour",
    start: (now: number) => Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS,
  },
  "7d": {
    label: "Last 7 days",
    granularity: "day",
    start: (now: number) => utcDay(now).getTime() - 6 * DAY_MS,
  },
  "30d": {
    label: "Last 30 days",
    granularity: "day",
    start: (now: number) => utcDay(now).getTime() - 29 * DAY_MS,
  },
} as const;
type RangeName = keyof typeof RANGES;

/** One route's load and failures over a range. */
export interface EndpointRow {
  route: string;
  requests: number;
  units: number;
  c4xx: number;
  c5xx: number;
  p95: number | null;
  top: { tenantId: string; slug: string; requests: number }[];
}

/** Every route's numbers over [`from`, now), busiest first. */
export async function endpointLoad(db: Db, granularity: "hour" | "day", from: Date): Promise<EndpointRow[]> {
  const range = sql`granularity = ${granularity}::rollup_granularity AND bucket_start >= ${from}`;
  const [counts, histograms, top] = await Promise.all([
    db.execute<{ route: string; status_class: number; requests: string; units: string }>(sql`
      SELECT route, status_class, sum(requests) AS requests, sum(billable_units) AS units
      FROM usage_rollups WHERE ${range} GROUP BY route, status_class`),
    // The histograms added bucket by bucket in Postgres: one row per route and bucket.
    db.execute<{ route: string; i: string; n: string }>(sql`
      SELECT route, h.i, sum(h.n) AS n
      FROM usage_rollups, unnest(latency_histogram) WITH ORDINALITY AS h(n, i)
      WHERE ${range} GROUP BY route, h.i`),
    db.execute<{ route: string; tenant_id: string; slug: string; requests: string }>(sql`
      SELECT r.route, r.tenant_id, t.slug, r.requests FROM (
        SELECT route, tenant_id, sum(requests) AS requests,
          row_number() OVER (PARTITION BY route ORDER BY sum(requests) DESC, tenant_id) AS rank
        FROM usage_rollups WHERE ${range} GROUP BY route, tenant_id) r
      JOIN tenants t ON t.id = r.tenant_id
      WHERE r.rank <= ${TOP_TENANTS} ORDER BY r.route, r.rank`),
  ]);
  const rows = new Map<string, EndpointRow & { histogram: number[] }>();
  const at = (route: string) => {
    let row = rows.get(route);
    if (!row) {
      row = {
        route,
        requests: 0,
        units: 0,
        c4xx: 0,
        c5xx: 0,
        p95: null,
        top: [],
        histogram: new Array(HISTOGRAM_SIZE).fill(0),
      };
      rows.set(route, row);
    }
    return row;
  };
  for (const r of counts.rows) {
    const row = at(r.route);
    const requests = Number(r.requests);
    row.requests += requests;
    row.units += Number(r.units);
    if (Number(r.status_class) === 4) row.c4xx += requests;
    if (Number(r.status_class) === 5) row.c5xx += requests;
  }
  for (const h of histograms.rows) {
    const row = at(h.route);
    row.histogram[Number(h.i) - 1] = Number(h.n);
  }
  for (const t of top.rows)
    at(t.route).top.push({ tenantId: t.tenant_id, slug: t.slug, requests: Number(t.requests) });
  return [...rows.values()]
    .map(({ histogram, ...row }) => ({ ...row, p95: percentile(histogram, 0.95) }))
    .sort((a, b) => b.requests - a.requests || a.route.localeCompare(b.route));
}

export function registerConsoleEndpoints(pages: Hono<AppEnv>): void {
  pages.get("/endpoints", async (c) => {
    const name = c.req.query("range") ?? "24h";
    if (!Object.hasOwn(RANGES, name)) throw new GatewayError("validation_failed", "Unknown range.");
    const range = RANGES[name as RangeName];
    const rows = await endpointLoad(c.var.db, range.granularity, new Date(range.start(Date.now())));
    return consolePage(
      c,
      { title: "Endpoints", current: "/console/endpoints", styles: ["/_static/console.css"] },
      <>
        <nav aria-label="Range" class="actions">
          {(Object.keys(RANGES) as RangeName[]).map((key) => (
            <a
              href={`/console/endpoints?range=${key}`}
              aria-current={key === name ? "page" : undefined}
              class="button"
            >
              {RANGES[key].label}
            </a>
          ))}
        </nav>
        <div class="table-wrap">
          <table>
            <caption>
              {range.label}, all tenants, busiest first. Failing: 5xx above {FAILING_5XX_RATE * 100} %.
            </caption>
            <TableHead
              columns={[
                "Route",
                num("Requests"),
                num("Units"),
                num("4xx"),
                num("5xx"),
                num("5xx rate"),
                num("p95"),
                "Top tenants",
              ]}
            />
            <tbody>
              {rows.length === 0 && (
                <tr>
                  <td colspan={8} class="muted">
                    No traffic in this range.
                  </td>
                </tr>
              )}
              {rows.map((r) => {
                const failing = r.requests > 0 && r.c5xx / r.requests > FAILING_5XX_RATE;
                return (
                  <tr data-route={r.route} class={failing ? "failing" : undefined}>
                    <td class="mono">
                      {r.route} {failing && <span class="badge badge-bad">failing</span>}
                    </td>
                    <td class="num">{count(r.requests)}</td>
                    <td class="num">{count(r.units)}</td>
                    <td class="num">{count(r.c4xx)}</td>
                    <td class="num">{count(r.c5xx)}</td>
                    <td class="num">{rate(r.c5xx, r.requests)}</td>
                    <td class="num">{ms(r.p95)}</td>
                    <td>
                      {r.top.map((t, i) => (
                        <>
                          {i > 0 && ", "}
                          <a href={`/console/tenants/${t.tenantId}`}>{t.slug}</a> {count(t.requests)}
                        </>
                      ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </>,
    );
  });
}
