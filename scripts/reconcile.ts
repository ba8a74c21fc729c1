/**
 * `npm run reconcile -- --from 2026-11-01 --to 2026-11-22 [--tenant ten_…] [--gateway URL]`
 *
 * The reconciliation report of cli/reconcile.ts (also `gw reconcile`): admitted = usage rows,
 * billable units = outbox = Stripe, and prepaid credits, one day at a time with progress on stderr.
 * Exits 1 if any hour differs (2 on a usage error, an unreachable gateway or a refused request).
 * Reads ADMIN_TOKEN (default: the `npm start` dev token) and GATEWAY_URL from the environment.
 */
import { parseArgs } from "node:util";
import { AdminClient } from "../cli/client";
import { CliError } from "../cli/errors";
import { printReconciliation, reconcile } from "../cli/reconcile";

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
  const client = new AdminClient(values.gateway, process.env.ADMIN_TOKEN ?? DEV_ADMIN_TOKEN);
  const result = await reconcile(client, { from, to, tenant: values.tenant }, (line) =>
    process.stderr.write(line),
  ).catch((error) => fail(error instanceof CliError ? error.message : String(error)));
  printReconciliation(result);
  process.exit(result.differences === 0 && result.creditDifferences === 0 ? 0 : 1);
}

await main();
