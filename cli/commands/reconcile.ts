/**
 * `gw reconcile --from --to [--tenant]`: the reconciliation report (cli/reconcile.ts, the same code
 * as `npm run reconcile`). Exit 7 when any tenant-hour or prepaid tenant's credits differ.
 */
import { Command } from "commander";
import { contextOf, tenantId } from "../context";
import { CliError, EXIT, usageError } from "../errors";
import { time } from "../options";
import { printReconciliation, reconcile } from "../reconcile";

/** The `reconcile` command. */
export function reconcileCommand(): Command {
  return new Command("reconcile")
    .description(
      "check admitted = usage rows = billed units = Stripe, and prepaid credits (exit 7 on a difference)",
    )
    .requiredOption("--from <time>", "start (a date like 2026-11-01, or an ISO time)", time)
    .requiredOption("--to <time>", "end, exclusive", time)
    .option("--tenant <tenant>", "one tenant (id or slug)")
    .action(async (flags: { from: string; to: string; tenant?: string }, command: Command) => {
      const { out, client } = contextOf(command);
      const from = Date.parse(flags.from);
      const to = Date.parse(flags.to);
      if (to <= from) throw usageError("--to must be after --from");
      const tenant = flags.tenant === undefined ? undefined : await tenantId(client, flags.tenant);
      const result = await reconcile(client, { from, to, tenant }, (line) => process.stderr.write(line));
      if (out.json) out.data(result, () => "");
      else printReconciliation(result);
      if (result.differences > 0 || result.creditDifferences > 0)
        throw new CliError(EXIT.differences, {
          title: "Differences",
          detail: `${result.differences} tenant-hours and ${result.creditDifferences} prepaid tenants differ`,
          code: "differences",
        });
    });
}
