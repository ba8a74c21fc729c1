/**
 * The credits column of reconciliation: per prepaid tenant, the tenant object's balance against what
 * the Postgres ledger says it must be —
 *   applied grants + refunds + adjustments − settled usage − billable usage not settled yet
 * (live billable usage rows since the tenant's first balance entry, in hours without a `usage`
 * entry) — and, for the settled hours, that each settled entry still equals its hour's usage rows
 * (`settledDrift`: a late event, or an edited row). Exact once the queue has delivered the usage of
 * every finished request; a request still in flight has spent its credits but has no row yet.
 * `settledDrift` covers the hours whose raw usage events retention still keeps (90 days by
 * default): an older hour's settled entry has no rows left to be compared with.
 */
import { sql } from "drizzle-orm";
import { configOf } from "../../config";
import type { Bindings } from "../../env";
import { rawUsageKeptFrom } from "../../retention/policies";
import type { Db } from "../../shared/db";
import { creditBalance, creditHours } from "../../shared/tenant-client";

export interface CreditReconciliationRow {
  tenantId: string;
  slug: string;
  /** The tenant object's balance. */
  objectBalance: number;
  /** What the ledger says the balance must be. */
  ledgerBalance: number;
  /** Applied grants, refunds and adjustments (signed sum). */
  appliedUnits: number;
  /** Grants, refunds and adjustments the object has not confirmed yet (the cron applies them). */
  pendingEntries: number;
  settledUnits: number;
  unsettledUnits: number;
  /** Billable units of the settled hours minus what their `usage` entries settled (0 when right), over the hours whose raw events are kept. */
  settledDrift: number;
  /** The object's own hourly ledger, summed: what it granted and spent (held − released). */
  objectGranted: number;
  objectSpent: number;
  difference: boolean;
}

/**
 * The ledger side and the object side disagree: the balance, what was granted, what was spent
 * (settled + unsettled usage), or a settled hour and its usage rows.
 */
export function creditsDiffer(r: Omit<CreditReconciliationRow, "difference">): boolean {
  return (
    r.objectBalance !== r.ledgerBalance ||
    r.objectGranted !== r.appliedUnits ||
    r.objectSpent !== r.settledUnits + r.unsettledUnits ||
    r.settledDrift !== 0
  );
}

/** One row per tenant on a prepaid plan (or just `tenantId`'s). */
export async function reconcileCredits(
  env: Bindings,
  db: Db,
  tenantId?: string,
): Promise<CreditReconciliationRow[]> {
  const kept = new Date(rawUsageKeptFrom(Date.now(), configOf(env).retention.usageEventsDays));
  const result = await db.execute<{
    id: string;
    slug: string;
    applied: string;
    pending: string;
    settled: string;
    unsettled: string;
    settled_kept: string;
    settled_rows: string;
  }>(sql`
    WITH prepaid AS (
      SELECT t.id, t.slug FROM tenants t JOIN plans p ON p.id = t.plan_id
      WHERE p.pricing->>'model' = 'prepaid' ${tenantId ? sql`AND t.id = ${tenantId}` : sql``}
    ),
    entries AS (
      SELECT l.tenant_id,
        coalesce(sum(l.units) FILTER (WHERE l.kind <> 'usage' AND l.applied_at IS NOT NULL), 0) AS applied,
        count(*) FILTER (WHERE l.kind <> 'usage' AND l.applied_at IS NULL) AS pending,
        coalesce(-sum(l.units) FILTER (WHERE l.kind = 'usage'), 0) AS settled,
        coalesce(-sum(l.units) FILTER (WHERE l.kind = 'usage' AND l.hour >= ${kept}), 0) AS settled_kept,
        min(l.created_at) FILTER (WHERE l.kind <> 'usage') AS first_at
      FROM credit_ledger l JOIN prepaid ON prepaid.id = l.tenant_id GROUP BY l.tenant_id
    ),
    usage_hours AS (
      SELECT u.tenant_id, date_trunc('hour', u.ts) AS hour, sum(u.units) AS units
      FROM usage_events u JOIN entries e ON e.tenant_id = u.tenant_id
      WHERE u.billable AND u.env = 'live' AND u.ts >= e.first_at
      GROUP BY 1, 2
    ),
    hours AS (
      SELECT h.tenant_id, h.hour, h.units, EXISTS (SELECT 1 FROM credit_ledger s WHERE s.tenant_id = h.tenant_id
        AND s.kind = 'usage' AND s.hour = h.hour) AS settled
      FROM usage_hours h
    )
    SELECT prepaid.id, prepaid.slug,
      coalesce(e.applied, 0) AS applied, coalesce(e.pending, 0) AS pending, coalesce(e.settled, 0) AS settled,
      coalesce((SELECT sum(units) FROM hours h WHERE h.tenant_id = prepaid.id AND NOT h.settled), 0) AS unsettled,
      coalesce(e.settled_kept, 0) AS settled_kept,
      coalesce((SELECT sum(units) FROM hours h WHERE h.tenant_id = prepaid.id AND h.settled AND h.hour >= ${kept}), 0)
        AS settled_rows
    FROM prepaid LEFT JOIN entries e ON e.tenant_id = prepaid.id
    ORDER BY prepaid.slug`);

  const rows: CreditReconciliationRow[] = [];
  for (const r of result.rows) {
    const [{ balance }, hours] = await Promise.all([
      creditBalance(env, r.id),
      creditHours(env, r.id, 0, Number.MAX_SAFE_INTEGER),
    ]);
    const appliedUnits = Number(r.applied);
    const settledUnits = Number(r.settled);
    const unsettledUnits = Number(r.unsettled);
    const row = {
      tenantId: r.id,
      slug: r.slug,
      objectBalance: balance,
      ledgerBalance: appliedUnits - settledUnits - unsettledUnits,
      appliedUnits,
      pendingEntries: Number(r.pending),
      settledUnits,
      unsettledUnits,
      settledDrift: Number(r.settled_rows) - Number(r.settled_kept),
      objectGranted: hours.reduce((sum, h) => sum + h.granted, 0),
      objectSpent: hours.reduce((sum, h) => sum + h.spent, 0),
    };
    rows.push({ ...row, difference: creditsDiffer(row) });
  }
  return rows;
}
