/**
 * Reconciliation: per tenant per hour, what the tenant object admitted, what the usage rows say,
 * what went into the billing outbox (every seq of the hour: its first report and any late deltas),
 * and what Stripe has. The invariant the product promises: admitted requests = usage rows, and
 * billable units in the rows = units in the outbox = units Stripe reports. Any other line is a
 * difference: units still pending in the outbox, and units that will never be billed (`failed`:
 * past Stripe's 35-day window or refused by Stripe), which are named with the reason.
 *
 * Usage rows come from the raw events while retention keeps them (`RETENTION_USAGE_EVENTS_DAYS`,
 * 90 days), and for older hours from the hourly rollups: the sink writes both in one statement from
 * the same inserted events (requests = rows, billable units = billable rows' units), so an hour
 * reconciles the same after its raw events are pruned (workers/retention/). The tenant object keeps
 * its admission ledger 400 days; rollups are kept 25 months. On a leased plan the ledger counts a
 * lease's requests when its holder reports them; a lease whose holder never did lapses, and its hour
 * shows the lapsed units next to the difference they explain (`lapsedLeaseUnits`).
 */
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { rawUsageKeptFrom } from "../retention/policies";
import type { Db } from "../shared/db";
import { ensureMeter, meterEventName, stripeClient } from "../shared/stripe";
import { reconciliationHours } from "../shared/tenant-client";

export interface ReconciliationRow {
  tenantId: string;
  slug: string;
  /** ISO start of the hour. */
  hour: string;
  admittedRequests: number;
  /** Usage events of the hour (from the hourly rollups once its raw events may have been pruned). */
  usageRows: number;
  billableUnits: number;
  outboxUnits: number;
  outboxPendingUnits: number;
  /** Units Stripe will never bill (past its 35-day window, or refused): the operator must act. */
  outboxFailedUnits: number;
  /** Why (the distinct `last_error`s of the failed rows), or null. */
  outboxFailure: string | null;
  /** Null when Stripe reporting is off or the tenant has no Stripe customer. */
  stripeUnits: number | null;
  /**
   * Units of leases granted this hour that lapsed unreported (their isolate went away: lease mode,
   * durable-objects/lease.ts). The requests admitted from them are in the usage rows but not in
   * `admittedRequests`, so such an hour differs by at most this many requests; 0 when none lapsed.
   */
  lapsedLeaseUnits: number;
  difference: boolean;
}

type Counts = Omit<ReconciliationRow, "tenantId" | "slug" | "hour" | "difference">;

const HOUR_MS = 3_600_000;
const empty = (stripe: boolean): Counts => ({
  admittedRequests: 0,
  usageRows: 0,
  billableUnits: 0,
  outboxUnits: 0,
  outboxPendingUnits: 0,
  outboxFailedUnits: 0,
  outboxFailure: null,
  stripeUnits: stripe ? 0 : null,
  lapsedLeaseUnits: 0,
});

/** A row differs when any leg of the chain disagrees with the one before it. */
export function differs(c: Counts): boolean {
  return (
    c.admittedRequests !== c.usageRows ||
    c.billableUnits !== c.outboxUnits ||
    c.outboxFailedUnits > 0 ||
    (c.stripeUnits !== null && c.stripeUnits !== c.billableUnits)
  );
}

async function stripeHours(
  stripe: Stripe,
  meterId: string,
  customer: string,
  from: number,
  to: number,
): Promise<Map<number, number>> {
  const hours = new Map<number, number>();
  for await (const summary of stripe.billing.meters.listEventSummaries(meterId, {
    customer,
    start_time: from / 1000,
    end_time: to / 1000,
    value_grouping_window: "hour",
  })) {
    hours.set(
      summary.start_time * 1000,
      (hours.get(summary.start_time * 1000) ?? 0) + summary.aggregated_value,
    );
  }
  return hours;
}

/**
 * The reporter stamps the units of hours that began before the subscription at its start
 * (stripe-reporter.ts, `meterTimestamp`), so Stripe's summary shows them in the start's hour. This
 * gives them back to the earlier hours they were counted in, oldest first, from what Stripe has in
 * the start's hour beyond that hour's own units: consistent numbers reconcile hour by hour, and a
 * unit missing anywhere still shows as a difference.
 */
function foldBackToHours(byHour: Map<number, Counts>, startedAt: number): void {
  const startHour = Math.floor(startedAt / HOUR_MS) * HOUR_MS;
  const bucket = byHour.get(startHour);
  if (!bucket || bucket.stripeUnits === null) return;
  let excess = bucket.stripeUnits - bucket.billableUnits;
  for (const hour of [...byHour.keys()].filter((h) => h < startHour).sort((a, b) => a - b)) {
    const counts = byHour.get(hour) as Counts;
    if (excess <= 0 || counts.stripeUnits === null) break;
    const move = Math.min(excess, counts.billableUnits - counts.stripeUnits);
    if (move <= 0) continue;
    counts.stripeUnits += move;
    bucket.stripeUnits -= move;
    excess -= move;
  }
}

/** Reconciles [from, to) (rounded out to whole hours), for one tenant or all. */
export async function reconcile(
  env: Bindings,
  db: Db,
  range: { from: number; to: number; tenantId?: string },
): Promise<ReconciliationRow[]> {
  const from = Math.floor(range.from / HOUR_MS) * HOUR_MS;
  const to = Math.ceil(range.to / HOUR_MS) * HOUR_MS;
  // Hours before `raw` are counted from the rollups: retention may have pruned their raw events.
  const kept = rawUsageKeptFrom(Date.now(), configOf(env).retention.usageEventsDays);
  const raw = Math.min(Math.max(from, kept), to);
  const tenantFilter = range.tenantId ? sql`AND tenant_id = ${range.tenantId}` : sql``;
  // Only the sources the range needs: a recent range never scans the (large) rollups table.
  const usageSources = [
    raw > from &&
      sql`SELECT tenant_id, bucket_start AS hour, sum(requests) AS rows, sum(billable_units) AS billable_units
      FROM usage_rollups
      WHERE granularity = 'hour' AND bucket_start >= ${new Date(from)} AND bucket_start < ${new Date(raw)} ${tenantFilter}
      GROUP BY 1, 2`,
    to > raw &&
      sql`SELECT tenant_id, date_trunc('hour', ts) AS hour, count(*) AS rows,
        coalesce(sum(units) FILTER (WHERE billable), 0) AS billable_units
      FROM usage_events WHERE ts >= ${new Date(raw)} AND ts < ${new Date(to)} ${tenantFilter}
      GROUP BY 1, 2`,
  ].filter((source) => source !== false);
  const [tenants, usage, outbox] = await Promise.all([
    db.execute<{
      id: string;
      slug: string;
      stripe_customer_id: string | null;
      billing_started_at: string | Date | null;
    }>(
      sql`SELECT id, slug, stripe_customer_id, billing_started_at FROM tenants ${range.tenantId ? sql`WHERE id = ${range.tenantId}` : sql``} ORDER BY slug`,
    ),
    db.execute<{ tenant_id: string; hour: string; rows: string; billable_units: string }>(
      sql.join(usageSources, sql` UNION ALL `),
    ),
    db.execute<{
      tenant_id: string;
      hour: string;
      units: string;
      pending: string;
      failed: string;
      failure: string | null;
    }>(sql`
      SELECT tenant_id, hour, sum(units) AS units,
        coalesce(sum(units) FILTER (WHERE state = 'pending'), 0) AS pending,
        coalesce(sum(units) FILTER (WHERE state = 'failed'), 0) AS failed,
        string_agg(DISTINCT last_error, '; ') FILTER (WHERE state = 'failed') AS failure
      FROM billing_outbox WHERE hour >= ${new Date(from)} AND hour < ${new Date(to)} ${tenantFilter}
      GROUP BY 1, 2`),
  ]);

  const stripe = stripeClient(env);
  const meterId = stripe ? await ensureMeter(stripe, meterEventName(env)) : null;

  const rows: ReconciliationRow[] = [];
  for (const tenant of tenants.rows) {
    const hasStripe = stripe !== null && tenant.stripe_customer_id !== null;
    const byHour = new Map<number, Counts>();
    const at = (hour: number) => {
      let counts = byHour.get(hour);
      if (!counts) {
        counts = empty(hasStripe);
        byHour.set(hour, counts);
      }
      return counts;
    };
    const { admitted, lapsed } = await reconciliationHours(env, tenant.id, from, to);
    for (const h of admitted) at(h.hour).admittedRequests = h.requests;
    for (const h of lapsed) at(h.hour).lapsedLeaseUnits = h.units;
    for (const u of usage.rows.filter((r) => r.tenant_id === tenant.id)) {
      const counts = at(new Date(u.hour).getTime());
      counts.usageRows = Number(u.rows);
      counts.billableUnits = Number(u.billable_units);
    }
    for (const o of outbox.rows.filter((r) => r.tenant_id === tenant.id)) {
      const counts = at(new Date(o.hour).getTime());
      counts.outboxUnits = Number(o.units);
      counts.outboxPendingUnits = Number(o.pending);
      counts.outboxFailedUnits = Number(o.failed);
      counts.outboxFailure = o.failure;
    }
    if (hasStripe && stripe && meterId && tenant.stripe_customer_id && byHour.size > 0) {
      for (const [hour, units] of await stripeHours(stripe, meterId, tenant.stripe_customer_id, from, to)) {
        at(hour).stripeUnits = units;
      }
      if (tenant.billing_started_at !== null)
        foldBackToHours(byHour, new Date(tenant.billing_started_at).getTime());
    }
    for (const [hour, counts] of [...byHour.entries()].sort((a, b) => a[0] - b[0])) {
      rows.push({
        tenantId: tenant.id,
        slug: tenant.slug,
        hour: new Date(hour).toISOString(),
        ...counts,
        difference: differs(counts),
      });
    }
  }
  return rows;
}

/** Units Stripe will never bill, over the whole outbox (any hour): what `unbilled` reports. */
export interface Unbilled {
  units: number;
  tenantHours: number;
  /** ISO start of the oldest and newest such hour, or null when there are none. */
  firstHour: string | null;
  lastHour: string | null;
}

/**
 * The failed outbox rows of every hour, not only the range asked for: an hour past Stripe's window
 * is older than any recent range, and still needs the operator.
 */
export async function unbilled(db: Db, tenantId?: string): Promise<Unbilled> {
  const result = await db.execute<{
    units: string;
    tenant_hours: string;
    first: string | null;
    last: string | null;
  }>(sql`
    SELECT coalesce(sum(units), 0) AS units, count(DISTINCT (tenant_id, hour)) AS tenant_hours,
      min(hour) AS first, max(hour) AS last
    FROM billing_outbox WHERE state = 'failed' ${tenantId ? sql`AND tenant_id = ${tenantId}` : sql``}`);
  const r = result.rows[0];
  return {
    units: Number(r?.units ?? 0),
    tenantHours: Number(r?.tenant_hours ?? 0),
    firstHour: r?.first ? new Date(r.first).toISOString() : null,
    lastHour: r?.last ? new Date(r.last).toISOString() : null,
  };
}
