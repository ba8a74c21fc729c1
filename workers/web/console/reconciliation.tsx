/**
 * `GET /console/reconciliation`: the reconciliation that `GET /admin/v1/reconciliation` and
 * `npm run reconcile` report (workers/metering/reconciliation.ts), per UTC day over the last `days`
 * (default 7, at most 31), optionally for one tenant. A day where any tenant-hour differs is marked
 * (a class and the word DIFF, not colour alone) and links to `?day=YYYY-MM-DD`: that day per hour and
 * tenant, the differing rows marked the same way. Units Stripe will never bill are summed above.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { type ReconciliationRow, reconcile, unbilled } from "../../metering/reconciliation";
import { consolePage } from "./console-page";
import { count, utc, utcDay } from "./format";

const DAY_MS = 86_400_000;
const MAX_DAYS = 31;

/** The summed columns of a set of reconciliation rows. */
interface Columns {
  admittedRequests: number;
  usageRows: number;
  billableUnits: number;
  outboxUnits: number;
  outboxPendingUnits: number;
  outboxFailedUnits: number;
  /** Null when no row had a Stripe side. */
  stripeUnits: number | null;
  difference: boolean;
}

function sum(rows: ReconciliationRow[]): Columns {
  const out: Columns = {
    admittedRequests: 0,
    usageRows: 0,
    billableUnits: 0,
    outboxUnits: 0,
    outboxPendingUnits: 0,
    outboxFailedUnits: 0,
    stripeUnits: null,
    difference: false,
  };
  for (const r of rows) {
    out.admittedRequests += r.admittedRequests;
    out.usageRows += r.usageRows;
    out.billableUnits += r.billableUnits;
    out.outboxUnits += r.outboxUnits;
    out.outboxPendingUnits += r.outboxPendingUnits;
    out.outboxFailedUnits += r.outboxFailedUnits;
    if (r.stripeUnits !== null) out.stripeUnits = (out.stripeUnits ?? 0) + r.stripeUnits;
    out.difference ||= r.difference;
  }
  return out;
}

const HEADERS = ["Admitted", "Usage rows", "Billable units", "Outbox", "Pending", "Failed", "Stripe"];

function Cells(props: { c: Columns }) {
  const c = props.c;
  return (
    <>
      <td class="num">{count(c.admittedRequests)}</td>
      <td class="num">{count(c.usageRows)}</td>
      <td class="num">{count(c.billableUnits)}</td>
      <td class="num">{count(c.outboxUnits)}</td>
      <td class="num">{count(c.outboxPendingUnits)}</td>
      <td class="num">{count(c.outboxFailedUnits)}</td>
      <td class="num">{c.stripeUnits === null ? "–" : count(c.stripeUnits)}</td>
      <td>
        {c.difference ? <span class="badge badge-bad">DIFF</span> : <span class="badge badge-ok">ok</span>}
      </td>
    </>
  );
}

function Head(props: { first: string[] }) {
  return (
    <thead>
      <tr>
        {props.first.map((h) => (
          <th scope="col">{h}</th>
        ))}
        {HEADERS.map((h) => (
          <th scope="col" class="num">
            {h}
          </th>
        ))}
        <th scope="col">Check</th>
      </tr>
    </thead>
  );
}

/** A positive whole number of days, at most 31. */
function daysOf(text: string | undefined): number {
  if (text === undefined || text === "") return 7;
  const days = /^\d{1,2}$/.test(text) ? Number(text) : 0;
  if (days < 1 || days > MAX_DAYS) throw new GatewayError("validation_failed", `days: 1 to ${MAX_DAYS}.`);
  return days;
}

function tenantOf(text: string | undefined): string | undefined {
  if (text === undefined || text === "") return undefined;
  if (text.length > 64) throw new GatewayError("validation_failed", "tenant: at most 64 characters.");
  return text;
}

async function dayDetail(c: Context<AppEnv>, day: string, tenantId: string | undefined) {
  const from = Date.parse(`${day}T00:00:00.000Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(from))
    throw new GatewayError("validation_failed", "day: a date as YYYY-MM-DD.");
  const rows = await reconcile(c.env, c.var.db, {
    from,
    to: from + DAY_MS,
    ...(tenantId ? { tenantId } : {}),
  });
  return consolePage(
    c,
    { title: `Reconciliation ${day}`, current: "/console/reconciliation", styles: ["/_static/console.css"] },
    <>
      <p>
        <a href={`/console/reconciliation${tenantId ? `?tenant=${encodeURIComponent(tenantId)}` : ""}`}>
          All days
        </a>
      </p>
      <div class="table-wrap">
        <table>
          <caption>Per hour and tenant (UTC); {rows.filter((r) => r.difference).length} differ</caption>
          <Head first={["Hour", "Tenant"]} />
          <tbody>
            {rows.length === 0 && (
              <tr>
                <td colspan={10} class="muted">
                  Nothing this day.
                </td>
              </tr>
            )}
            {rows.map((r) => (
              <tr class={r.difference ? "diff" : undefined} data-hour={r.hour} data-tenant-id={r.tenantId}>
                <td>{utc(r.hour)}</td>
                <td>
                  <a href={`/console/tenants/${r.tenantId}`}>{r.slug}</a>
                  {r.outboxFailure && <div class="muted">{r.outboxFailure}</div>}
                  {r.lapsedLeaseUnits > 0 && (
                    <div class="muted">
                      {r.lapsedLeaseUnits} units of leases lapsed unreported: their requests are in the rows,
                      not in admitted
                    </div>
                  )}
                </td>
                <Cells c={r} />
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>,
  );
}

export function registerConsoleReconciliation(pages: Hono<AppEnv>): void {
  pages.get("/reconciliation", async (c) => {
    const tenantId = tenantOf(c.req.query("tenant"));
    const day = c.req.query("day");
    if (day !== undefined && day !== "") return dayDetail(c, day, tenantId);
    const days = daysOf(c.req.query("days"));
    const now = Date.now();
    const to = utcDay(now).getTime() + DAY_MS;
    const from = to - days * DAY_MS;
    const [rows, never] = await Promise.all([
      reconcile(c.env, c.var.db, { from, to, ...(tenantId ? { tenantId } : {}) }),
      unbilled(c.var.db, tenantId),
    ]);
    const byDay = new Map<string, ReconciliationRow[]>();
    for (const r of rows) {
      const key = r.hour.slice(0, 10);
      byDay.set(key, [...(byDay.get(key) ?? []), r]);
    }
    const list = Array.from({ length: days }, (_, i) =>
      new Date(to - (i + 1) * DAY_MS).toISOString().slice(0, 10),
    );
    const query = (d: string) => `?day=${d}${tenantId ? `&tenant=${encodeURIComponent(tenantId)}` : ""}`;
    return consolePage(
      c,
      { title: "Reconciliation", current: "/console/reconciliation", styles: ["/_static/console.css"] },
      <>
        <form method="get" action="/console/reconciliation" class="card filters">
          <label for="days">Days</label>
          <input id="days" name="days" inputmode="numeric" value={String(days)} />
          <label for="tenant">Tenant id</label>
          <input id="tenant" name="tenant" value={tenantId ?? ""} />
          <button type="submit">Show</button>
        </form>
        {never.units > 0 && (
          <p class="notice notice-error" role="alert">
            {count(never.units)} units in {count(never.tenantHours)} tenant-hours will never be billed by
            Stripe ({utc(never.firstHour)} to {utc(never.lastHour)}): see Dead letters.
          </p>
        )}
        <div class="table-wrap">
          <table>
            <caption>Per UTC day: admitted = usage rows, billable units = outbox = Stripe</caption>
            <Head first={["Day"]} />
            <tbody>
              {list.map((d) => {
                const columns = sum(byDay.get(d) ?? []);
                return (
                  <tr class={columns.difference ? "diff" : undefined} data-day={d}>
                    <td>
                      <a href={`/console/reconciliation${query(d)}`}>{d}</a>
                    </td>
                    <Cells c={columns} />
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
