/**
 * `GET /console/tenants/:id`: one tenant for the operator — its facts (plan, status and who set it,
 * overrides, billing state, credits), usage over the last 24 hours and 30 days, latency percentiles,
 * error rates by route and status class, its keys — and the forms that change it: plan, limit
 * overrides, suspend / reinstate, credit adjustment, key revocation, a one-time portal link and a
 * billing re-sync. Every form goes through the same services as the admin API
 * (workers/api/tenant-changes.ts, key-lifecycle.ts), so Postgres, KV, the tenant object and Stripe
 * move exactly as they do through the API. A success redirects back (303) with a notice; a refusal
 * (bad input, a debit past the balance) renders the page again with the reason and its 4xx status.
 */
import { and, asc, desc, eq, gte, lt } from "drizzle-orm";
import type { Context, Hono } from "hono";
import { apiKeys, plans, tenants, usageRollups } from "../../../schema";
import { revokeKey } from "../../api/key-lifecycle";
import { LimitOverridesPatch } from "../../api/schemas";
import { adjustCredits, mintPortalLink, retryBillingSync, updateTenant } from "../../api/tenant-changes";
import {
  billingSyncRetried,
  creditsAdjusted,
  keyRevoked,
  portalLinkCreated,
  tenantUpdated,
} from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { addHistograms, emptyHistogram, percentile } from "../../metering/latency-histogram";
import { timeseries } from "../../metering/usage-queries";
import type { Db } from "../../shared/db";
import { creditBalance } from "../../shared/tenant-client";
import { CsrfField, Notice, num, PostButton, TableHead } from "../layout";
import { consolePage } from "./console-page";
import { count, ms, type NoticeCode, RedirectNotice, rate, StatusBadge, utc, utcDay } from "./format";

/** The usage chart: uPlot from the Worker's own assets (scripts/vendor-web-assets.mjs), then the page's script. */
const SCRIPTS = ["/_static/vendor/uPlot.iife.min.js", "/_static/console-charts.js"];
const STYLES = ["/_static/vendor/uPlot.min.css", "/_static/console.css"];
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const OVERRIDE_FIELDS = [
  ["burstCapacity", "Burst capacity (requests)"],
  ["refillTokens", "Refill tokens"],
  ["refillPeriodSeconds", "Refill period (seconds)"],
  ["dailyQuota", "Daily quota (units)"],
  ["monthlyQuota", "Monthly quota (units)"],
] as const;

interface Counts {
  requests: number;
  units: number;
  c4xx: number;
  c5xx: number;
}

/** The counts under `key`, made empty on first use. */
function at<K>(map: Map<K, Counts>, key: K): Counts {
  let counts = map.get(key);
  if (!counts) {
    counts = { requests: 0, units: 0, c4xx: 0, c5xx: 0 };
    map.set(key, counts);
  }
  return counts;
}

function add(into: Counts, r: { statusClass: number; requests: number; units: number }): void {
  into.requests += r.requests;
  into.units += r.units;
  if (r.statusClass === 4) into.c4xx += r.requests;
  if (r.statusClass === 5) into.c5xx += r.requests;
}

/** The last 24 hours from the hourly rollups: per hour, per route, per status class, and latency. */
async function lastDay(db: Db, tenantId: string, now: number) {
  const from = new Date(Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS);
  const rows = await db
    .select({
      bucketStart: usageRollups.bucketStart,
      route: usageRollups.route,
      statusClass: usageRollups.statusClass,
      requests: usageRollups.requests,
      units: usageRollups.billableUnits,
      histogram: usageRollups.latencyHistogram,
    })
    .from(usageRollups)
    .where(
      and(
        eq(usageRollups.tenantId, tenantId),
        eq(usageRollups.granularity, "hour"),
        gte(usageRollups.bucketStart, from),
        lt(usageRollups.bucketStart, new Date(now + HOUR_MS)),
      ),
    )
    .orderBy(asc(usageRollups.bucketStart), asc(usageRollups.route));
  // Every hour of the window, quiet ones as zeros: the chart's x axis spans the whole day, not just
  // the hours with traffic (one point alone made uPlot pick a range of years).
  const hours = new Map<string, Counts>();
  for (let i = 0; i < 24; i++) at(hours, new Date(from.getTime() + i * HOUR_MS).toISOString());
  const routes = new Map<string, Counts>();
  const classes = new Map<number, number>();
  let histogram = emptyHistogram();
  for (const raw of rows) {
    const r = { ...raw, requests: Number(raw.requests), units: Number(raw.units) };
    const hour = r.bucketStart.toISOString();
    add(at(hours, hour), r);
    add(at(routes, r.route), r);
    classes.set(r.statusClass, (classes.get(r.statusClass) ?? 0) + r.requests);
    histogram = addHistograms(histogram, r.histogram);
  }
  return {
    hours,
    routes: [...routes].sort((a, b) => b[1].requests - a[1].requests),
    classes,
    total: [...classes.values()].reduce((a, b) => a + b, 0),
    latency: {
      p50: percentile(histogram, 0.5),
      p95: percentile(histogram, 0.95),
      p99: percentile(histogram, 0.99),
    },
  };
}

/** The last 30 days (UTC), per day, through the usage API's own query. */
async function lastMonth(db: Db, tenantId: string, now: number) {
  const points = await timeseries(db, tenantId, {
    granularity: "day",
    from: new Date(utcDay(now).getTime() - 29 * DAY_MS),
    to: new Date(now + 1),
  });
  const days = new Map<string, Counts>();
  for (const p of points) {
    const day = at(days, p.bucketStart);
    day.requests += p.requests;
    day.units += p.billableUnits;
    day.c4xx += p.statuses["4xx"] ?? 0;
    day.c5xx += p.statuses["5xx"] ?? 0;
  }
  return [...days].sort((a, b) => b[0].localeCompare(a[0]));
}

/** The prepaid tenant's balance from its object, or why not. */
async function balanceOf(c: Context<AppEnv>, tenantId: string): Promise<string> {
  try {
    const { balance, held } = await creditBalance(c.env, tenantId);
    return `${count(balance)} units${held > 0 ? ` (${count(held)} held)` : ""}`;
  } catch {
    return "unreachable right now";
  }
}

function UsageTable(props: {
  caption: string;
  first: string;
  rows: [string, Counts][];
  label: (k: string) => string;
}) {
  return (
    <div class="table-wrap">
      <table>
        <caption>{props.caption}</caption>
        <TableHead
          columns={[props.first, num("Requests"), num("Units"), num("4xx"), num("5xx"), num("5xx rate")]}
        />
        <tbody>
          {props.rows.length === 0 && (
            <tr>
              <td colspan={6} class="muted">
                No traffic.
              </td>
            </tr>
          )}
          {props.rows.map(([key, n]) => (
            <tr>
              <td class="mono">{props.label(key)}</td>
              <td class="num">{count(n.requests)}</td>
              <td class="num">{count(n.units)}</td>
              <td class="num">{count(n.c4xx)}</td>
              <td class="num">{count(n.c5xx)}</td>
              <td class="num">{rate(n.c5xx, n.requests)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface RenderOptions {
  error?: string;
  status?: number;
  /** A portal link just minted: shown once. */
  portal?: { url: string; expiresAt: Date };
}

/** Renders the tenant page (also after a refused form, with the reason). */
async function renderTenant(c: Context<AppEnv>, id: string, options: RenderOptions = {}) {
  const db = c.var.db;
  const now = Date.now();
  const [row] = await db
    .select({ tenant: tenants, plan: plans })
    .from(tenants)
    .innerJoin(plans, eq(plans.id, tenants.planId))
    .where(eq(tenants.id, id));
  if (!row) throw new GatewayError("not_found", "No such tenant.");
  const { tenant, plan } = row;
  const prepaid = plan.pricing.model === "prepaid";
  const [allPlans, keys, day, month, balance] = await Promise.all([
    db.select({ id: plans.id, name: plans.name }).from(plans).orderBy(asc(plans.name)),
    db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.tenantId, id))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
      .limit(100),
    lastDay(db, id, now),
    lastMonth(db, id, now),
    prepaid ? balanceOf(c, id) : Promise.resolve(null),
  ]);
  const csrf = c.var.web?.csrf ?? "";
  const base = `/console/tenants/${tenant.id}`;
  const o = tenant.overrides;
  const suspended = tenant.status === "suspended";

  return consolePage(
    c,
    {
      title: tenant.name,
      current: "/console",
      status: options.status ?? 200,
      scripts: SCRIPTS,
      styles: STYLES,
    },
    <>
      {options.error ? <Notice kind="error">{options.error}</Notice> : <RedirectNotice c={c} />}
      {options.portal && (
        <section class="card" aria-labelledby="portal-link-title">
          <h2 id="portal-link-title">Portal link</h2>
          <p>Shown once. It signs in once, until {utc(options.portal.expiresAt)}.</p>
          <p class="secret">
            <code id="portal-url">{options.portal.url}</code>
            <button type="button" data-copy="portal-url">
              Copy
            </button>
          </p>
        </section>
      )}
      <section class="card" aria-labelledby="facts-title">
        <h2 id="facts-title">Facts</h2>
        <dl class="facts">
          <dt>Id</dt>
          <dd class="mono">{tenant.id}</dd>
          <dt>Slug</dt>
          <dd class="mono">{tenant.slug}</dd>
          <dt>Plan</dt>
          <dd>
            {plan.name} <span class="muted">({plan.pricing.model})</span>
          </dd>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={tenant.status} /> <span class="muted">set by {tenant.statusReason}</span>
            {tenant.graceUntil && <span class="muted"> · grace until {utc(tenant.graceUntil)}</span>}
          </dd>
          <dt>Overrides</dt>
          <dd>
            {Object.keys(o).length === 0
              ? "none (the plan's limits)"
              : Object.entries(o)
                  .map(([k, v]) => `${k} ${v === null ? "unlimited" : v}`)
                  .join(", ")}
          </dd>
          <dt>Billing</dt>
          <dd>
            customer <span class="mono">{tenant.stripeCustomerId ?? "–"}</span>, subscription{" "}
            <span class="mono">{tenant.stripeSubscriptionId ?? "–"}</span>, sync{" "}
            <span
              class={`badge badge-${tenant.billingSync === "failed" ? "bad" : tenant.billingSync === "ok" ? "ok" : "warn"}`}
            >
              {tenant.billingSync}
            </span>
            {tenant.billingError && <span class="muted"> · {tenant.billingError}</span>}
          </dd>
          {balance !== null && (
            <>
              <dt>Credits</dt>
              <dd>{balance}</dd>
            </>
          )}
          <dt>Created</dt>
          <dd>{utc(tenant.createdAt)}</dd>
        </dl>
        <div class="actions">
          <PostButton action={`${base}/portal-link`} csrf={csrf} label="Portal link" />
          {tenant.billingSync !== "ok" && (
            <PostButton action={`${base}/billing-sync`} csrf={csrf} label="Retry sync" />
          )}
        </div>
      </section>

      <section class="card" aria-labelledby="latency-title">
        <h2 id="latency-title">Last 24 hours</h2>
        <dl class="facts">
          <dt>Latency</dt>
          <dd>
            p50 {ms(day.latency.p50)} · p95 {ms(day.latency.p95)} · p99 {ms(day.latency.p99)}
          </dd>
          <dt>By status class</dt>
          <dd>
            {[2, 4, 5]
              .map(
                (k) =>
                  `${k}xx ${count(day.classes.get(k) ?? 0)} (${rate(day.classes.get(k) ?? 0, day.total)})`,
              )
              .join(" · ")}
          </dd>
        </dl>
        <UsageTable
          caption="Errors by route, last 24 hours"
          first="Route"
          rows={day.routes}
          label={(k) => k}
        />
        <div
          id="usage-chart"
          class="chart"
          role="img"
          aria-label="Requests, 4xx and 5xx per hour, last 24 hours; the same numbers are in the hourly table"
          data-series={JSON.stringify(
            [...day.hours].map(([hour, n]) => [Date.parse(hour) / 1000, n.requests, n.c4xx, n.c5xx]),
          )}
        />
        <UsageTable
          caption="Hourly, last 24 hours (UTC)"
          first="Hour"
          rows={[...day.hours].reverse()}
          label={(k) => utc(k)}
        />
        <UsageTable
          caption="Daily, last 30 days (UTC)"
          first="Day"
          rows={month}
          label={(k) => k.slice(0, 10)}
        />
      </section>

      <section class="card" aria-labelledby="quota-title">
        <h2 id="quota-title">Quota management</h2>
        <form id="plan-form" method="post" action={`${base}/plan`}>
          <CsrfField csrf={csrf} />
          <label for="planId">Plan</label>
          <select id="planId" name="planId">
            {allPlans.map((p) => (
              <option value={p.id} selected={p.id === plan.id}>
                {p.name}
              </option>
            ))}
          </select>
          <button type="submit">Change plan</button>
        </form>

        <form id="overrides-form" method="post" action={`${base}/overrides`}>
          <CsrfField csrf={csrf} />
          <p class="muted">Limit overrides; leave a field blank for the plan's value.</p>
          {OVERRIDE_FIELDS.map(([name, label]) => {
            const value = o[name];
            const planValue = plan[name];
            return (
              <>
                <label for={`o-${name}`}>
                  {label} <span class="muted">(plan: {planValue === null ? "unlimited" : planValue})</span>
                </label>
                <input
                  id={`o-${name}`}
                  name={name}
                  inputmode="numeric"
                  pattern="[0-9]*"
                  value={value === undefined || value === null ? "" : String(value)}
                />
              </>
            );
          })}
          <button type="submit">Save overrides</button>
        </form>

        <form
          id="status-form"
          method="post"
          action={`${base}/status`}
          data-confirm={suspended ? "Reinstate this tenant?" : "Suspend this tenant? Its requests get 403."}
        >
          <CsrfField csrf={csrf} />
          <input type="hidden" name="status" value={suspended ? "active" : "suspended"} />
          <button type="submit" class={suspended ? "primary" : "danger"}>
            {suspended ? "Reinstate" : "Suspend"}
          </button>
        </form>

        {prepaid && (
          <form id="credits-form" method="post" action={`${base}/credits`}>
            <CsrfField csrf={csrf} />
            <label for="units">Credit adjustment (units; negative to take away)</label>
            <input id="units" name="units" inputmode="numeric" required />
            <label for="reason">Reason</label>
            <input id="reason" name="reason" maxlength={500} required />
            <button type="submit">Adjust credits</button>
          </form>
        )}
      </section>

      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Name</th>
                <th scope="col">Env / role</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="muted">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => {
                const expired = k.expiresAt !== null && k.expiresAt.getTime() <= now;
                return (
                  <tr data-key-id={k.id}>
                    <td class="mono">
                      {k.prefix}…{k.last4}
                    </td>
                    <td>{k.name ?? "–"}</td>
                    <td>
                      {k.env} / {k.role}
                    </td>
                    <td>{utc(k.createdAt)}</td>
                    <td>
                      {k.revokedAt ? (
                        <span class="badge badge-revoked">revoked</span>
                      ) : expired ? (
                        <span class="badge badge-warn">expired</span>
                      ) : (
                        <span class="badge badge-ok">active</span>
                      )}
                    </td>
                    <td>
                      {!k.revokedAt && (
                        <PostButton
                          action={`${base}/keys/${k.id}/revoke`}
                          csrf={csrf}
                          label="Revoke"
                          confirm="Revoke this key? Its next request gets 401."
                          danger
                        />
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </section>
    </>,
  );
}

/** A form field as text (a file upload is no answer). */
function field(form: Record<string, string | File | (string | File)[]>, name: string): string {
  const value = form[name];
  return typeof value === "string" ? value.trim() : "";
}

/**
 * Runs a form's change: 303 back with `notice` when it went through; the page again with the
 * reason and its status when the change was refused (4xx). An unknown tenant stays a 404 page.
 */
async function change(c: Context<AppEnv>, notice: NoticeCode, fn: (id: string) => Promise<unknown>) {
  const id = c.req.param("id") ?? "";
  try {
    await fn(id);
  } catch (error) {
    if (error instanceof GatewayError && error.status < 500 && error.code !== "not_found")
      return renderTenant(c, id, { error: error.message, status: error.status });
    throw error;
  }
  return c.redirect(`/console/tenants/${id}?notice=${notice}`, 303);
}

const invalid = (message: string) => new GatewayError("validation_failed", message);

/** The overrides form as a merge patch: a blank field goes back to the plan's value (null). */
function overridesPatch(form: Record<string, string | File | (string | File)[]>) {
  const patch: Record<string, number | null> = {};
  const wrong: string[] = [];
  for (const [name, label] of OVERRIDE_FIELDS) {
    const text = field(form, name);
    if (text === "") patch[name] = null;
    else if (/^\d{1,13}$/.test(text)) patch[name] = Number(text);
    else wrong.push(label);
  }
  if (wrong.length > 0) throw invalid(`Not a whole number: ${wrong.join(", ")}.`);
  const parsed = LimitOverridesPatch.safeParse(patch);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => {
      const name = String(i.path[0]);
      return `${OVERRIDE_FIELDS.find(([n]) => n === name)?.[1] ?? name}: ${i.message}`;
    });
    throw invalid(`Overrides refused: ${fields.join("; ")}.`);
  }
  return parsed.data;
}

/** The tenant as it is before a change, for the audit trail's before/after. */
const tenantRow = (db: Db, id: string) => db.query.tenants.findFirst({ where: eq(tenants.id, id) });

/** A tenant change through the admin API's service, with its before/after for the audit trail. */
async function changeTenant(c: Context<AppEnv>, id: string, patch: Parameters<typeof updateTenant>[3]) {
  const before = await tenantRow(c.var.db, id);
  c.set("audit", tenantUpdated(before, await updateTenant(c.env, c.var.db, id, patch)));
}

export function registerConsoleTenant(pages: Hono<AppEnv>): void {
  pages.get("/tenants/:id", (c) => renderTenant(c, c.req.param("id")));

  pages.post("/tenants/:id/plan", (c) =>
    change(c, "plan", async (id) => {
      const planId = field(await c.req.parseBody(), "planId");
      if (planId === "" || planId.length > 64) throw invalid("Choose a plan.");
      await changeTenant(c, id, { planId });
    }),
  );

  pages.post("/tenants/:id/overrides", (c) =>
    change(c, "overrides", async (id) => {
      const overrides = overridesPatch(await c.req.parseBody());
      await changeTenant(c, id, { overrides });
    }),
  );

  pages.post("/tenants/:id/status", async (c) => {
    const status = field(await c.req.parseBody(), "status");
    return change(c, status === "active" ? "reinstated" : "suspended", async (id) => {
      if (status !== "active" && status !== "suspended") throw invalid("Unknown status.");
      await changeTenant(c, id, { status });
    });
  });

  pages.post("/tenants/:id/credits", (c) =>
    change(c, "credits", async (id) => {
      const form = await c.req.parseBody();
      const unitsText = field(form, "units");
      const reason = field(form, "reason");
      const units = /^-?\d{1,10}$/.test(unitsText) ? Number(unitsText) : Number.NaN;
      if (!Number.isSafeInteger(units) || units === 0 || Math.abs(units) > 1_000_000_000)
        throw invalid("Units: a whole number other than 0, at most 1,000,000,000 either way.");
      if (reason === "" || reason.length > 500) throw invalid("Give a reason (at most 500 characters).");
      const { entry, balance } = await adjustCredits(c.env, c.var.db, id, {
        units,
        reason,
        actor: "console",
      });
      c.set("audit", creditsAdjusted(id, entry, balance));
    }),
  );

  pages.post("/tenants/:id/keys/:keyId/revoke", (c) =>
    change(c, "revoked", async (id) => {
      const keyId = c.req.param("keyId");
      const key = await c.var.db.query.apiKeys.findFirst({ where: eq(apiKeys.id, keyId) });
      // A key id of another tenant in this tenant's URL: the same answer as no key.
      if (!key || key.tenantId !== id) throw new GatewayError("not_found", "No such key.");
      const revoked = await revokeKey(c.var.db, c.env, keyId);
      if (revoked) c.set("audit", keyRevoked(key, revoked));
    }),
  );

  pages.post("/tenants/:id/billing-sync", (c) =>
    change(c, "synced", async (id) => {
      const before = await tenantRow(c.var.db, id);
      c.set("audit", billingSyncRetried(before, await retryBillingSync(c.env, c.var.db, id)));
    }),
  );

  // The link is shown once, in this response (not after a redirect: it is never stored readable).
  pages.post("/tenants/:id/portal-link", async (c) => {
    const id = c.req.param("id");
    const portal = await mintPortalLink(c.var.db, id, c.req.url);
    c.set("audit", portalLinkCreated(id, portal.expiresAt));
    return renderTenant(c, id, { portal });
  });
}
