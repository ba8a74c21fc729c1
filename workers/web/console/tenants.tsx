/**
 * `GET /console`: the operator's tenants, newest first, a keyset page at a time (as the admin API
 * pages, workers/api/pagination.ts): search by name, slug or id (`q`), filter by status; per tenant
 * its plan and today's usage (UTC day, from the daily rollups): requests, billable units, 5xx rate
 * and p95 latency. Two queries per page whatever its length: the tenants with their plans, then
 * the day's rollups of exactly those tenants. `limit` (default 50) and `cursor` as the admin API takes them.
 */
import { and, eq, ilike, inArray, or, type SQL } from "drizzle-orm";
import type { Hono } from "hono";
import { plans, tenantStatus, tenants, usageRollups } from "../../../schema";
import { DEFAULT_LIMIT, keyset, PageQuery } from "../../api/pagination";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { addHistograms, emptyHistogram, percentile } from "../../metering/latency-histogram";
import type { Db } from "../../shared/db";
import { Notice, num, TableHead } from "../layout";
import { consolePage } from "./console-page";
import { count, ms, RedirectNotice, rate, StatusBadge, utcDay } from "./format";

const MAX_QUERY = 200;
const STATUSES = tenantStatus.enumValues;
type Status = (typeof STATUSES)[number];

/** One tenant's usage over the day so far. */
export interface DayUsage {
  requests: number;
  units: number;
  errors5xx: number;
  p95: number | null;
}

/** `%`, `_` and `\` are LIKE's own: a search for `a_b` means those three characters. */
const likeEscape = (text: string) => text.replace(/[\\%_]/g, (ch) => `\\${ch}`);

/** Today's (UTC) usage of `tenantIds`, in one query over the daily rollups. */
export async function usageToday(
  db: Db,
  tenantIds: string[],
  now = Date.now(),
): Promise<Map<string, DayUsage>> {
  const out = new Map<string, DayUsage & { histogram: number[] }>();
  if (tenantIds.length === 0) return new Map();
  const rows = await db
    .select({
      tenantId: usageRollups.tenantId,
      statusClass: usageRollups.statusClass,
      requests: usageRollups.requests,
      units: usageRollups.billableUnits,
      histogram: usageRollups.latencyHistogram,
    })
    .from(usageRollups)
    .where(
      and(
        eq(usageRollups.granularity, "day"),
        eq(usageRollups.bucketStart, utcDay(now)),
        inArray(usageRollups.tenantId, tenantIds),
      ),
    );
  for (const r of rows) {
    let u = out.get(r.tenantId);
    if (!u) {
      u = { requests: 0, units: 0, errors5xx: 0, p95: null, histogram: emptyHistogram() };
      out.set(r.tenantId, u);
    }
    u.requests += Number(r.requests);
    u.units += Number(r.units);
    if (r.statusClass === 5) u.errors5xx += Number(r.requests);
    u.histogram = addHistograms(u.histogram, r.histogram);
  }
  return new Map(
    [...out].map(([id, { histogram, ...u }]) => [id, { ...u, p95: percentile(histogram, 0.95) }]),
  );
}

/** The page's filters from the query string; a bad one is a 400 (an error page), never a 500. */
function filters(c: { req: { query(name: string): string | undefined } }) {
  const q = (c.req.query("q") ?? "").trim();
  if (q.length > MAX_QUERY)
    throw new GatewayError("validation_failed", `The search is at most ${MAX_QUERY} characters.`);
  const status = c.req.query("status") ?? "";
  if (status !== "" && !STATUSES.includes(status as Status))
    throw new GatewayError("validation_failed", "Unknown status.");
  const cursor = c.req.query("cursor");
  // `limit` and `cursor` as the admin API's lists take them (a bad one is a 400 too).
  const page = PageQuery.safeParse({ limit: c.req.query("limit") || undefined, cursor: cursor || undefined });
  if (!page.success)
    throw new GatewayError("validation_failed", "limit: 1 to 200; cursor: as a page gave it.");
  return { q, status: status as Status | "", page: page.data };
}

export function registerConsoleTenants(pages: Hono<AppEnv>): void {
  pages.get("/", async (c) => {
    const { q, status, page: query } = filters(c);
    const db = c.var.db;
    const page = keyset("console-tenants", tenants, query, "desc");
    const where: (SQL | undefined)[] = [page.where];
    if (q !== "") {
      const like = `%${likeEscape(q)}%`;
      where.push(or(eq(tenants.id, q), ilike(tenants.slug, like), ilike(tenants.name, like)));
    }
    if (status !== "") where.push(eq(tenants.status, status));
    const rows = await db
      .select({ row: tenants, planName: plans.name, position: page.position })
      .from(tenants)
      .innerJoin(plans, eq(plans.id, tenants.planId))
      .where(and(...where))
      .orderBy(...page.orderBy)
      .limit(page.take);
    const shown = page.page(
      rows.map((r) => ({ row: { ...r.row, planName: r.planName }, position: r.position })),
      (t) => t,
      (t) => t.id,
    );
    const usage = await usageToday(
      db,
      shown.data.map((t) => t.id),
    );
    const next = new URLSearchParams();
    if (q) next.set("q", q);
    if (status) next.set("status", status);
    if (query.limit !== DEFAULT_LIMIT) next.set("limit", String(query.limit));
    if (shown.next_cursor) next.set("cursor", shown.next_cursor);

    return consolePage(
      c,
      { title: "Tenants", current: "/console", styles: ["/_static/console.css"] },
      <>
        <RedirectNotice c={c} />
        <form method="get" action="/console" class="card filters">
          <label for="q">Name, slug or id</label>
          <input id="q" name="q" type="search" value={q} maxlength={MAX_QUERY} />
          <label for="status">Status</label>
          <select id="status" name="status">
            <option value="" selected={status === ""}>
              Any
            </option>
            {STATUSES.map((s) => (
              <option value={s} selected={status === s}>
                {s.replace("_", " ")}
              </option>
            ))}
          </select>
          <button type="submit">Search</button>
        </form>
        {shown.data.length === 0 ? (
          <Notice kind="ok">No tenant matches.</Notice>
        ) : (
          <div class="table-wrap">
            <table>
              <caption>Usage today (UTC)</caption>
              <TableHead
                columns={[
                  "Tenant",
                  "Status",
                  "Plan",
                  num("Requests"),
                  num("Units"),
                  num("5xx rate"),
                  num("p95"),
                ]}
              />
              <tbody>
                {shown.data.map((t) => {
                  const u = usage.get(t.id);
                  return (
                    <tr data-tenant-id={t.id}>
                      <td>
                        <a href={`/console/tenants/${t.id}`}>{t.name}</a>
                        <br />
                        <span class="muted mono">{t.slug}</span>
                      </td>
                      <td>
                        <StatusBadge status={t.status} />
                      </td>
                      <td>{t.planName}</td>
                      <td class="num">{count(u?.requests ?? 0)}</td>
                      <td class="num">{count(u?.units ?? 0)}</td>
                      <td class="num">{rate(u?.errors5xx ?? 0, u?.requests ?? 0)}</td>
                      <td class="num">{ms(u?.p95 ?? null)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {shown.next_cursor && (
          <p>
            <a href={`/console?${next.toString()}`} rel="next">
              Next page
            </a>
          </p>
        )}
      </>,
    );
  });
}
