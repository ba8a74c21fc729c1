/**
 * `gw plans list|create|update`: the admin plans API (`/admin/v1/plans`). A plan is named by its
 * id or its name.
 */
import { Command, Option } from "commander";
import { contextOf, planId } from "../context";
import { integer, json, list, quota } from "../options";
import { formatRecord, formatTable } from "../output";

/** A plan as the admin API returns it (the fields the CLI shows). */
interface Plan {
  id: string;
  name: string;
  burstCapacity: number;
  refillTokens: number;
  refillPeriodSeconds: number;
  dailyQuota: number | null;
  monthlyQuota: number | null;
  entitlements: string[];
  pricing: { model: string };
}

interface PlanFlags {
  name?: string;
  burst?: number;
  refillTokens?: number;
  refillPeriod?: number;
  daily?: number | null;
  monthly?: number | null;
  entitlements?: string[];
  pricing?: unknown;
  sandboxLimits?: unknown;
  admissionMode?: "exact" | "leased";
  applyPricing?: "now" | "period_end";
}

function row(p: Plan): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    burst: p.burstCapacity,
    refill: `${p.refillTokens}/${p.refillPeriodSeconds}s`,
    daily: p.dailyQuota ?? "unlimited",
    monthly: p.monthlyQuota ?? "unlimited",
    pricing: p.pricing.model,
    entitlements: p.entitlements,
  };
}

/** The request body from the flags that were given (a PATCH changes only those). */
function body(flags: PlanFlags): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    name: flags.name,
    burstCapacity: flags.burst,
    refillTokens: flags.refillTokens,
    refillPeriodSeconds: flags.refillPeriod,
    dailyQuota: flags.daily,
    monthlyQuota: flags.monthly,
    entitlements: flags.entitlements,
    pricing: flags.pricing,
    sandboxLimits: flags.sandboxLimits,
    admissionMode: flags.admissionMode,
    applyPricing: flags.applyPricing,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** The plan's flags; the bucket's are required to create one. */
function planFlags(command: Command, create: boolean): Command {
  const add = (create ? command.requiredOption : command.option).bind(command);
  add("--name <name>", "plan name (unique; shown in X-RateLimit-Plan)");
  add("--burst <n>", "token bucket capacity", integer);
  add("--refill-tokens <n>", "tokens added per refill period", integer);
  add("--refill-period <seconds>", "refill period in seconds", integer);
  return command
    .option("--daily <n|none>", "daily quota (UTC day), none = unlimited", quota)
    .option("--monthly <n|none>", "monthly quota (UTC month), none = unlimited", quota)
    .option("--entitlements <list>", "comma-separated entitlements (route groups the plan may call)", list)
    .option("--pricing <json>", 'pricing, e.g. \'{"model":"free"}\' (see README: Billing)', json)
    .option("--sandbox-limits <json>", "test-key limits, e.g. '{\"dailyQuota\":100}'", json)
    .addOption(
      new Option("--admission-mode <mode>", "exact, or leased (hot tenants; see README: Lease mode)").choices(
        ["exact", "leased"],
      ),
    );
}

/** The `plans` command group. */
export function plansCommand(): Command {
  const plans = new Command("plans").description("list, create and update plans");

  plans
    .command("list")
    .description("list every plan, oldest first")
    .action(async (_flags, command: Command) => {
      const { out, client } = contextOf(command);
      const all = await client.all<Plan>("/admin/v1/plans");
      out.data(all, (ps) => (ps.length === 0 ? "no plans" : formatTable(ps.map(row))));
    });

  planFlags(plans.command("create").description("create a plan"), true).action(
    async (flags: PlanFlags, command: Command) => {
      const { out, client } = contextOf(command);
      const plan = await client.request<Plan>("POST", "/admin/v1/plans", { body: body(flags) });
      out.data(plan, (p) => formatRecord(row(p)));
    },
  );

  planFlags(plans.command("update").description("change a plan (only the flags given)"), false)
    .argument("<plan>", "plan id or name")
    .addOption(
      new Option(
        "--apply-pricing <when>",
        "with --pricing: when tenants on the plan move (default period_end)",
      ).choices(["now", "period_end"]),
    )
    .action(async (ref: string, flags: PlanFlags, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await planId(client, ref);
      const plan = await client.request<Plan>("PATCH", `/admin/v1/plans/${encodeURIComponent(id)}`, {
        body: body(flags),
      });
      out.data(plan, (p) => formatRecord(row(p)));
    });

  return plans;
}
