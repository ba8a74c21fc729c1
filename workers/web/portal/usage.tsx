/**
 * `GET /portal/usage`: pick a range and a format, download every usage event in it.
 * `GET /portal/usage/export?format=csv|ndjson&from&to`: the download — the very stream
 * `/gateway/v1/usage/export` sends (workers/metering/usage-queries.ts `exportUsage`, read as the
 * session's tenant), as an attachment named `usage-<from>-<to>.<ext>`. A bad range or format is a
 * 400: the form again with what to fix for a browser, problem+json for anything else.
 */
import type { Context, Hono } from "hono";
import { tenantRecord } from "../../api/projection";
import { refusal } from "../../edge/admit";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { exportUsage } from "../../metering/usage-queries";
import { admit, tenantConfig } from "../../shared/tenant-client";
import { wantsErrorPage } from "../error-page";
import { Notice } from "../layout";
import { portalTenant, portalTenantId } from "./context";
import { portalPage } from "./portal-page";
import { exportRange, localValue } from "./usage-range";

const FORMATS = {
  csv: "text/csv; charset=utf-8",
  ndjson: "application/x-ndjson",
} as const;

type Format = keyof typeof FORMATS;

const DAY_MS = 86_400_000;
/** What `GET /gateway/v1/usage/export` costs at the tenant API's door (workers/api/tenant/door.ts). */
const EXPORT_COST = 30;

/** An instant in a file name: `2027-03-01T10:00:00.000Z` → `20270301T100000Z`. */
const compact = (date: Date) =>
  date
    .toISOString()
    .replace(/\.\d{3}/, "")
    .replace(/[-:]/g, "");

/** Ready-made ranges, as download links (UTC): the last 24 hours, this month, last month. */
function presets(now: number): { label: string; from: Date; to: Date }[] {
  const d = new Date(now);
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const lastMonthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  const hourEnd = Math.ceil(now / 3_600_000) * 3_600_000;
  return [
    { label: "Last 24 hours", from: new Date(hourEnd - DAY_MS), to: new Date(hourEnd) },
    { label: "This month", from: new Date(monthStart), to: new Date(hourEnd) },
    { label: "Last month", from: new Date(lastMonthStart), to: new Date(monthStart) },
  ];
}

async function usagePage(
  c: Context<AppEnv>,
  form: { from: string; to: string; format: string },
  problem: string | null,
) {
  const { tenant } = await portalTenant(c);
  return portalPage(
    c,
    { title: "Usage", current: "/portal/usage", who: tenant.name, status: problem ? 400 : 200 },
    <>
      <p>
        Every request made with your keys, one row each: id, time, key, environment, method, route, status,
        billable, units, bytes and latency. Usage shows up within 10 seconds of a call.
      </p>
      {problem && <Notice kind="error">{problem}</Notice>}
      <form method="get" action="/portal/usage/export" class="card narrow" id="export-form">
        <label for="from">From (UTC)</label>
        <input id="from" name="from" type="datetime-local" value={form.from} required />
        <label for="to">To (UTC, not included)</label>
        <input id="to" name="to" type="datetime-local" value={form.to} required />
        <label for="format">Format</label>
        <select id="format" name="format">
          <option value="csv" selected={form.format !== "ndjson"}>
            CSV (with a header row)
          </option>
          <option value="ndjson" selected={form.format === "ndjson"}>
            NDJSON (one JSON object a line)
          </option>
        </select>
        <button type="submit" class="primary">
          Download
        </button>
      </form>
      <h2>Quick downloads</h2>
      <ul id="export-presets">
        {presets(Date.now()).map((p) => (
          <li>
            {p.label}:{" "}
            {(["csv", "ndjson"] as const).map((format, i) => (
              <>
                {i > 0 && " · "}
                <a
                  href={`/portal/usage/export?format=${format}&from=${p.from.toISOString()}&to=${p.to.toISOString()}`}
                >
                  {format.toUpperCase()}
                </a>
              </>
            ))}
          </li>
        ))}
      </ul>
      <p class="muted">At most 366 days per download; the file streams, however many rows.</p>
    </>,
  );
}

/**
 * An export scans Postgres: it spends what the tenant API's export spends (30) from the tenant's
 * management bucket in the tenant object, the bucket both share, so a signed-in page cannot hammer
 * Postgres any more than a key can. The object's verdict on the tenant (suspended → 403) applies too.
 * No key is involved: the synthetic key id has no record in the object, so no key check refuses it.
 */
async function chargeExport(c: Context<AppEnv>): Promise<void> {
  const { tenant, plan } = await portalTenant(c);
  const result = await admit(c.env, tenant.id, {
    keyId: "portal",
    keyLimit: null,
    env: "live",
    cost: EXPORT_COST,
    config: tenantConfig(tenantRecord(tenant, plan)),
    idempotency: null,
    door: "manage",
    write: false,
  });
  switch (result.outcome) {
    case "admitted":
      return;
    case "rate_limited":
    case "quota_exceeded":
      throw new GatewayError("rate_limited", `Too many downloads. Retry in ${result.retryAfter} s.`, {
        headers: { "retry-after": String(result.retryAfter) },
      });
    case "replay":
    case "credits_exhausted":
    case "overloaded":
      // No Idempotency-Key is taken here, the manage door spends no credits, and it never asks for an in-flight slot.
      throw new GatewayError("internal", "An internal error occurred.");
    default:
      throw refusal(result.outcome, null, result.pastDue);
  }
}

/** Registers `GET /portal/usage` and `GET /portal/usage/export`. */
export function registerPortalUsage(portal: Hono<AppEnv>): void {
  portal.get("/usage", (c) => {
    const now = Date.now();
    const d = new Date(now);
    const from = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
    const to = new Date(Math.ceil(now / 60_000) * 60_000);
    return usagePage(c, { from: localValue(from), to: localValue(to), format: "csv" }, null);
  });

  portal.get("/usage/export", async (c) => {
    const tenantId = portalTenantId(c);
    const q = c.req.query();
    const format = q.format || "csv";
    let r: { from: Date; to: Date };
    try {
      if (format !== "csv" && format !== "ndjson")
        throw new GatewayError("validation_failed", "`format` must be csv or ndjson.");
      r = exportRange(q);
    } catch (error) {
      if (!(error instanceof GatewayError) || !wantsErrorPage(c)) throw error;
      return usagePage(c, { from: q.from ?? "", to: q.to ?? "", format }, error.message);
    }
    await chargeExport(c);
    const ext: Format = format === "ndjson" ? "ndjson" : "csv";
    return new Response(exportUsage(c.env, tenantId, { ...r, format: ext }), {
      headers: {
        "content-type": FORMATS[ext],
        "content-disposition": `attachment; filename="usage-${compact(r.from)}-${compact(r.to)}.${ext}"`,
      },
    });
  });
}
