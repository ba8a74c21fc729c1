/**
 * The reconciliation report, shared by `gw reconcile` and `npm run reconcile` (scripts/reconcile.ts):
 * asks the admin API for the reconciliation table (admitted = usage rows, billable units = outbox =
 * Stripe; and per prepaid tenant, the tenant object's credit balance = the credit ledger's) one day
 * at a time (the API takes at most 31 days per call), with progress on stderr, then prints every hour
 * that has traffic, every hour with units Stripe will never bill and why, and the credits.
 */
import type { CreditReconciliationRow } from "../workers/billing/credits/reconcile-credits";
import type { ReconciliationRow as Row, Unbilled } from "../workers/metering/reconciliation";
import type { AdminClient } from "./client";

const DAY_MS = 86_400_000;

/** What the admin API answered, gathered over the range. */
export interface Reconciliation {
  rows: Row[];
  unbilled: Unbilled | null;
  credits: CreditReconciliationRow[];
  /** Tenant-hours that break the invariant. */
  differences: number;
  /** Prepaid tenants whose credits differ. */
  creditDifferences: number;
}

/** Fetches the reconciliation of [from, to), a day per call, drawing progress with `progress`. */
export async function reconcile(
  client: AdminClient,
  range: { from: number; to: number; tenant?: string | undefined },
  progress: (line: string) => void,
): Promise<Reconciliation> {
  const rows: Row[] = [];
  let unbilled: Unbilled | null = null;
  let credits: CreditReconciliationRow[] = [];
  const days = Math.ceil((range.to - range.from) / DAY_MS);
  try {
    for (let day = 0; day < days; day++) {
      const start = range.from + day * DAY_MS;
      const end = Math.min(range.to, start + DAY_MS);
      progress(`\rreconciling day ${day + 1}/${days} (${new Date(start).toISOString().slice(0, 10)})`);
      const body = await client.request<{
        rows: Row[];
        unbilled: Unbilled;
        credits?: CreditReconciliationRow[];
      }>("GET", "/admin/v1/reconciliation", {
        query: { from: new Date(start).toISOString(), to: new Date(end).toISOString(), tenant: range.tenant },
      });
      rows.push(...body.rows);
      unbilled = body.unbilled;
      // The credits column is the balance now, whatever the day: the last answer is the newest.
      credits = body.credits ?? [];
    }
  } finally {
    // Ends the progress line, also before an error is printed after it.
    progress("\n");
  }
  return {
    rows,
    unbilled,
    credits,
    differences: rows.filter((r) => r.difference).length,
    creditDifferences: credits.filter((r) => r.difference).length,
  };
}

/** Prints the report for people on stdout (tables, then the summary lines). */
export function printReconciliation(r: Reconciliation): void {
  const table = r.rows.map((row) => ({
    tenant: row.slug,
    hour: row.hour.slice(0, 13).replace("T", " "),
    admitted: row.admittedRequests,
    rows: row.usageRows,
    billable: row.billableUnits,
    outbox: row.outboxUnits,
    pending: row.outboxPendingUnits,
    unbilled: row.outboxFailedUnits,
    stripe: row.stripeUnits ?? "n/a",
    ok: row.difference ? "DIFF" : "ok",
  }));
  if (table.length > 0) console.table(table);
  const unbilled = r.rows.filter((row) => row.outboxFailedUnits > 0);
  if (unbilled.length > 0) {
    console.log(
      `${unbilled.reduce((a, row) => a + row.outboxFailedUnits, 0)} units will never be billed by Stripe (bill them by hand):`,
    );
    console.table(
      unbilled.map((row) => ({
        tenant: row.slug,
        hour: row.hour.slice(0, 13).replace("T", " "),
        units: row.outboxFailedUnits,
        reason: row.outboxFailure,
      })),
    );
  }
  const lapsed = r.rows.filter((row) => row.lapsedLeaseUnits > 0);
  if (lapsed.length > 0) {
    console.log(
      "leases that lapsed unreported (their isolate went away): their requests have usage rows but are not in `admitted`, at most this many per hour:",
    );
    console.table(
      lapsed.map((row) => ({
        tenant: row.slug,
        hour: row.hour.slice(0, 13).replace("T", " "),
        "lapsed units": row.lapsedLeaseUnits,
        "rows − admitted": row.usageRows - row.admittedRequests,
      })),
    );
  }
  const never = r.unbilled;
  if (never && never.units > 0) {
    console.log(
      `all hours: ${never.units} units in ${never.tenantHours} tenant-hours from ${never.firstHour} to ${never.lastHour} will never be billed by Stripe (list them with --from/--to around those hours)`,
    );
  }
  if (r.credits.length > 0) {
    console.table(
      r.credits.map((row) => ({
        tenant: row.slug,
        "object balance": row.objectBalance,
        "ledger balance": row.ledgerBalance,
        applied: row.appliedUnits,
        settled: row.settledUnits,
        unsettled: row.unsettledUnits,
        pending: row.pendingEntries,
        drift: row.settledDrift,
        ok: row.difference ? "DIFF" : "ok",
      })),
    );
  }
  console.log(
    r.differences === 0
      ? `reconciled ${r.rows.length} tenant-hours: no differences`
      : `${r.differences} of ${r.rows.length} tenant-hours differ`,
  );
  if (r.credits.length > 0) {
    console.log(
      r.creditDifferences === 0
        ? `credits: ${r.credits.length} prepaid tenants reconciled: no differences`
        : `credits: ${r.creditDifferences} of ${r.credits.length} prepaid tenants differ`,
    );
  }
}
