/**
 * `npm run reconcile -- --from 2026-11-01 --to 2026-11-22 [--tenant ten_…] [--gateway URL]`
 *
 * Asks the gateway's admin API for the reconciliation table (admitted = usage rows, billable
 * units = outbox = Stripe; and per prepaid tenant, the tenant object's credit balance = the credit
 * ledger's) one day at a time, with progress on stderr, prints every hour that
 * has traffic, then every hour with units Stripe will never bill (past its 35-day window, or
 * refused) and why, and exits 1 if any hour differs (2 on a usage error or an unreachable gateway).
 * Reads ADMIN_TOKEN (default: the `npm start` dev token) and GATEWAY_URL from the environment.
 */
import { parseArgs } from "node:util";
import type { CreditReconciliationRow } from "../workers/billing/credits/reconcile-credits";
import type { ReconciliationRow as Row, Unbilled } from "../workers/metering/reconciliation";

const DAY_MS = 86_400_000;
const DEV_ADMIN_TOKEN = "dev-admin-token";

function fail(message: string): never {
  console.error(`reconcile: ${message}`);
  process.exit(2);
}

function parseTime(value: string | undefined, name: string): number {
  if (!value) fail(`--${name} is required (a date like 2026-11-01 or an ISO time)`);
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(ms)) fail(`--${name} '${value}' is not a date`);
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      from: { type: "string" },
      to: { type: "string" },
      tenant: { type: "string" },
      gateway: { type: "string", default: process.env.GATEWAY_URL ?? "http://127.0.0.1:8787" },
    },
  });
  const from = parseTime(values.from, "from");
  const to = parseTime(values.to, "to");
  if (to <= from) fail("--to must be after --from");
  const token = process.env.ADMIN_TOKEN ?? DEV_ADMIN_TOKEN;

  const rows: Row[] = [];
  let never: Unbilled | undefined;
  let credits: CreditReconciliationRow[] = [];
  const days = Math.ceil((to - from) / DAY_MS);
  for (let day = 0; day < days; day++) {
    const start = from + day * DAY_MS;
    const end = Math.min(to, start + DAY_MS);
    process.stderr.write(
      `\rreconciling day ${day + 1}/${days} (${new Date(start).toISOString().slice(0, 10)})`,
    );
    const url = new URL("/admin/v1/reconciliation", values.gateway);
    url.searchParams.set("from", new Date(start).toISOString());
    url.searchParams.set("to", new Date(end).toISOString());
    if (values.tenant) url.searchParams.set("tenant", values.tenant);
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } }).catch((error) =>
      fail(`cannot reach the gateway at ${values.gateway}: ${String(error)}`),
    );
    if (!res.ok) fail(`the gateway answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as {
      rows: Row[];
      unbilled: Unbilled;
      credits?: CreditReconciliationRow[];
    };
    rows.push(...body.rows);
    never = body.unbilled;
    // The credits column is the balance now, whatever the day: the last answer is the newest.
    credits = body.credits ?? [];
  }
  process.stderr.write("\n");

  const table = rows.map((r) => ({
    tenant: r.slug,
    hour: r.hour.slice(0, 13).replace("T", " "),
    admitted: r.admittedRequests,
    rows: r.usageRows,
    billable: r.billableUnits,
    outbox: r.outboxUnits,
    pending: r.outboxPendingUnits,
    unbilled: r.outboxFailedUnits,
    stripe: r.stripeUnits ?? "n/a",
    ok: r.difference ? "DIFF" : "ok",
  }));
  if (table.length > 0) console.table(table);
  const unbilled = rows.filter((r) => r.outboxFailedUnits > 0);
  if (unbilled.length > 0) {
    console.log(
      `${unbilled.reduce((a, r) => a + r.outboxFailedUnits, 0)} units will never be billed by Stripe (bill them by hand):`,
    );
    console.table(
      unbilled.map((r) => ({
        tenant: r.slug,
        hour: r.hour.slice(0, 13).replace("T", " "),
        units: r.outboxFailedUnits,
        reason: r.outboxFailure,
      })),
    );
  }
  if (never && never.units > 0) {
    console.log(
      `all hours: ${never.units} units in ${never.tenantHours} tenant-hours from ${never.firstHour} to ${never.lastHour} will never be billed by Stripe (list them with --from/--to around those hours)`,
    );
  }
  if (credits.length > 0) {
    console.table(
      credits.map((r) => ({
        tenant: r.slug,
        "object balance": r.objectBalance,
        "ledger balance": r.ledgerBalance,
        applied: r.appliedUnits,
        settled: r.settledUnits,
        unsettled: r.unsettledUnits,
        pending: r.pendingEntries,
        drift: r.settledDrift,
        ok: r.difference ? "DIFF" : "ok",
      })),
    );
  }
  const differences = rows.filter((r) => r.difference).length;
  const creditDifferences = credits.filter((r) => r.difference).length;
  console.log(
    differences === 0
      ? `reconciled ${rows.length} tenant-hours: no differences`
      : `${differences} of ${rows.length} tenant-hours differ`,
  );
  if (credits.length > 0) {
    console.log(
      creditDifferences === 0
        ? `credits: ${credits.length} prepaid tenants reconciled: no differences`
        : `credits: ${creditDifferences} of ${credits.length} prepaid tenants differ`,
    );
  }
  process.exit(differences === 0 && creditDifferences === 0 ? 0 : 1);
}

await main();
