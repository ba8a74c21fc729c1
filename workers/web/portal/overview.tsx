/**
 * `GET /portal`: the tenant's overview — tenant, plan and status; the live windows (burst, daily,
 * monthly) from the tenant object; requests, errors and latency over a chosen range, as a chart
 * (drawn by `/_static/portal-charts.js` with uPlot) over a server-rendered table that stays the
 * no-JavaScript and screen-reader view; and a per-endpoint table.
 * `GET /portal/overview.json`: the same numbers (same session, same query) for the page's script,
 * which refreshes them every 5 s while the page is visible.
 *
 * DOM hooks the browser tests rely on: `table#windows`, `#traffic-chart`, `table#endpoints` with
 * `tr[data-route]` rows and a `td[data-requests]` cell.
 */
import type { Context, Hono } from "hono";
import { tenantRecord } from "../../api/projection";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { peek, tenantConfig } from "../../shared/tenant-client";
import { Notice, num, TableHead } from "../layout";
import { portalTenant } from "./context";
import { type OverviewData, overviewData, type WindowRow, windowRows } from "./overview-data";
import { portalPage } from "./portal-page";
import { localValue, type OverviewRange, overviewRange, type RangeInput } from "./usage-range";

const SCRIPTS = ["/_static/vendor/uPlot.iife.min.js", "/_static/portal-charts.js"];
const STYLES = ["/_static/vendor/uPlot.min.css", "/_static/portal-overview.css"];

const count = (n: number) => n.toLocaleString("en-US");
const ms = (n: number | null) => (n === null ? "—" : `${count(n)} ms`);
const pct = (rate: number) => `${(rate * 100).toFixed(1)} %`;
const when = (iso: string, granularity: "hour" | "day") =>
  granularity === "hour" ? `${iso.slice(0, 16).replace("T", " ")} UTC` : iso.slice(0, 10);

function rangeInput(c: Context<AppEnv>): Partial<RangeInput> {
  const q = c.req.query();
  return { range: q.range, from: q.from, to: q.to, granularity: q.granularity };
}

function Windows(props: { rows: WindowRow[] }) {
  return (
    <div class="table-wrap">
      <table id="windows">
        <caption class="muted">Live from the counters that enforce your limits.</caption>
        <TableHead
          columns={["Window", num("Used"), num("Limit"), num("Remaining"), "Resets", "Share used"]}
        />
        <tbody>
          {props.rows.map((w) => (
            <tr data-window={w.window}>
              <th scope="row">{w.window[0]?.toUpperCase() + w.window.slice(1)}</th>
              <td class="num" data-field="used">
                {count(w.used)}
              </td>
              <td class="num" data-field="limit">
                {w.limit === null ? "no limit" : count(w.limit)}
              </td>
              <td class="num" data-field="remaining">
                {w.remaining === null ? "—" : count(w.remaining)}
              </td>
              <td data-field="resets">{w.resets}</td>
              <td data-field="share">
                <span data-field="percent">{w.percent === null ? "—" : `${w.percent} %`}</span>
                {/* The numbers are in the row; the bar is decoration. Widths by class: the CSP allows no style attribute. */}
                <div class="meter" aria-hidden="true">
                  <span class={`pct-${w.percent ?? 0}`} />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RangeForm(props: { input: Partial<RangeInput>; range: OverviewRange | null }) {
  const preset = props.range?.preset ?? props.input.range ?? "24h";
  const granularity = props.range?.granularity ?? props.input.granularity ?? "hour";
  const from = props.input.from ?? (props.range ? localValue(props.range.from) : "");
  const to = props.input.to ?? (props.range ? localValue(props.range.to) : "");
  return (
    <form method="get" action="/portal" class="card range-form">
      <div class="grid">
        <div>
          <label for="range">Range</label>
          <select id="range" name="range">
            <option value="24h" selected={preset === "24h"}>
              Last 24 hours, by hour
            </option>
            <option value="30d" selected={preset === "30d"}>
              Last 30 days, by day
            </option>
            <option value="custom" selected={preset === "custom"}>
              Custom (from – to below)
            </option>
          </select>
        </div>
        <div>
          <label for="from">From (UTC)</label>
          <input id="from" name="from" type="datetime-local" value={from} />
        </div>
        <div>
          <label for="to">To (UTC)</label>
          <input id="to" name="to" type="datetime-local" value={to} />
        </div>
        <div>
          <label for="granularity">Granularity (custom)</label>
          <select id="granularity" name="granularity">
            <option value="hour" selected={granularity === "hour"}>
              Hour (up to 31 days)
            </option>
            <option value="day" selected={granularity === "day"}>
              Day (up to 366 days)
            </option>
          </select>
        </div>
      </div>
      <button type="submit" class="primary">
        Show
      </button>
    </form>
  );
}

function Traffic(props: { data: OverviewData; src: string }) {
  const { data } = props;
  const g = data.range.granularity;
  return (
    <>
      <div
        id="traffic-chart"
        class="chart"
        data-src={props.src}
        role="img"
        aria-label="Chart of requests, errors and latency; the same numbers are in the table below."
      />
      <div class="table-wrap scroll">
        <table id="traffic">
          <caption class="muted">
            Requests, errors and latency per {g} ({when(data.range.from, g)} to {when(data.range.to, g)}),
            live and test keys together. Latency is the upper bound of the histogram bucket the percentile
            falls in.
          </caption>
          <TableHead
            columns={[
              g === "hour" ? "Hour" : "Day",
              num("Requests"),
              num("4xx"),
              num("5xx"),
              num("p50"),
              num("p95"),
              num("p99"),
            ]}
          />
          <tbody>
            {data.series.map((p) => (
              <tr data-bucket={p.bucketStart}>
                <th scope="row">{when(p.bucketStart, g)}</th>
                <td class="num">{count(p.requests)}</td>
                <td class="num">{count(p.errors4xx)}</td>
                <td class="num">{count(p.errors5xx)}</td>
                <td class="num">{ms(p.p50)}</td>
                <td class="num">{ms(p.p95)}</td>
                <td class="num">{ms(p.p99)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function Endpoints(props: { data: OverviewData }) {
  return (
    <div class="table-wrap">
      <table id="endpoints">
        <caption class="muted">Per route of the API, over the range above.</caption>
        <TableHead
          columns={["Route", num("Requests"), num("Errors"), num("Error rate"), num("p95"), num("Units")]}
        />
        <tbody>
          {props.data.endpoints.length === 0 && (
            <tr class="empty">
              <td colspan={6} class="muted">
                No requests in this range.
              </td>
            </tr>
          )}
          {props.data.endpoints.map((e) => (
            <tr data-route={e.route}>
              <th scope="row">
                <code>{e.route}</code>
              </th>
              <td class="num" data-requests={String(e.requests)}>
                {count(e.requests)}
              </td>
              <td class="num" data-errors={String(e.errors)}>
                {count(e.errors)}{" "}
                <span class="muted">
                  ({count(e.errors4xx)} 4xx, {count(e.errors5xx)} 5xx)
                </span>
              </td>
              <td class="num">{pct(e.errorRate)}</td>
              <td class="num" data-p95={e.p95 === null ? "" : String(e.p95)}>
                {ms(e.p95)}
              </td>
              <td class="num" data-units={String(e.units)}>
                {count(e.units)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Registers `GET /portal` and its JSON twin `GET /portal/overview.json`. */
export function registerPortalOverview(portal: Hono<AppEnv>): void {
  portal.get("/", async (c) => {
    const row = await portalTenant(c);
    const { tenant, plan } = row;
    const input = rangeInput(c);
    let range: OverviewRange | null = null;
    let problem: string | null = null;
    try {
      range = overviewRange(input, Date.now());
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      problem = error.message;
    }
    // A bad range still shows the live windows, with the form and what to fix.
    const data = range ? await overviewData(c.env, c.var.db, row, range) : null;
    const windows = data?.windows ?? (await peek(c.env, tenant.id, tenantConfig(tenantRecord(tenant, plan))));
    const search = new URL(c.req.url).search;
    return portalPage(
      c,
      {
        title: "Overview",
        current: "/portal",
        who: tenant.name,
        scripts: SCRIPTS,
        styles: STYLES,
        status: problem ? 400 : 200,
      },
      <>
        <dl class="facts card">
          <dt>Tenant</dt>
          <dd>{tenant.name}</dd>
          <dt>Plan</dt>
          <dd>{plan.name}</dd>
          <dt>Status</dt>
          <dd>
            <span class={`badge badge-${tenant.status}`}>{tenant.status}</span>
          </dd>
        </dl>
        <p class="muted" id="freshness">
          Usage updates within 10 seconds of a call; this page refreshes its numbers every 5 s while it is
          open. <span data-updated>{data ? `As of ${data.generatedAt.slice(11, 19)} UTC.` : ""}</span>
        </p>
        <h2>Limits right now</h2>
        <Windows rows={data?.windowRows ?? windowRows(windows)} />
        <h2>Traffic</h2>
        {problem && <Notice kind="error">{problem}</Notice>}
        <RangeForm input={input} range={range} />
        {data && <Traffic data={data} src={`/portal/overview.json${search}`} />}
        {data && (
          <>
            <h2>Endpoints</h2>
            <Endpoints data={data} />
          </>
        )}
      </>,
    );
  });

  portal.get("/overview.json", async (c) => {
    const row = await portalTenant(c);
    const range = overviewRange(rangeInput(c), Date.now());
    return c.json(await overviewData(c.env, c.var.db, row, range));
  });
}
