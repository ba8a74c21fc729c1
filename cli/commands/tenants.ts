/**
 * `gw tenants list|get|create|update|suspend|reinstate`: the admin tenants API
 * (`/admin/v1/tenants`). A tenant is named by its id or its slug. `create` prints the tenant's first
 * key: the only time the gateway ever shows it.
 */
import { Command, Option } from "commander";
import { contextOf, planId, tenantId } from "../context";
import { json } from "../options";
import { formatRecord, formatTable } from "../output";

/** A tenant as the admin API returns it (the fields the CLI shows). */
export interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: string;
  statusReason: string;
  planId: string;
  overrides: Record<string, number | null>;
  billing: { sync: string };
  createdAt: string;
}

function row(t: Tenant): Record<string, unknown> {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    plan: t.planId,
    overrides: Object.keys(t.overrides).length === 0 ? "" : JSON.stringify(t.overrides),
    billing: t.billing.sync,
    created: t.createdAt,
  };
}

/** Sends a PATCH and prints the tenant it answers with. */
async function patch(command: Command, ref: string, body: Record<string, unknown>): Promise<void> {
  const { out, client } = contextOf(command);
  const id = await tenantId(client, ref);
  const tenant = await client.request<Tenant>("PATCH", `/admin/v1/tenants/${encodeURIComponent(id)}`, {
    body,
  });
  out.data(tenant, (t) => formatRecord(row(t)));
}

/** The `tenants` command group. */
export function tenantsCommand(): Command {
  const tenants = new Command("tenants").description("list, create, update, suspend and reinstate tenants");

  tenants
    .command("list")
    .description("list every tenant, oldest first")
    .action(async (_flags, command: Command) => {
      const { out, client } = contextOf(command);
      const all = await client.all<Tenant>("/admin/v1/tenants");
      out.data(all, (ts) => (ts.length === 0 ? "no tenants" : formatTable(ts.map(row))));
    });

  tenants
    .command("get")
    .description("show one tenant")
    .argument("<tenant>", "tenant id or slug")
    .action(async (ref: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const tenant = await client.request<Tenant>("GET", `/admin/v1/tenants/${encodeURIComponent(id)}`);
      out.data(tenant, (t) => formatRecord(row(t)));
    });

  tenants
    .command("create")
    .description("create a tenant and its first live key (printed once)")
    .requiredOption("--slug <slug>", "lower-case letters, digits and dashes")
    .requiredOption("--name <name>", "display name")
    .requiredOption("--plan <plan>", "plan id or name")
    .option("--overrides <json>", "limit overrides, e.g. '{\"dailyQuota\":5000}'", json)
    .action(
      async (flags: { slug: string; name: string; plan: string; overrides?: unknown }, command: Command) => {
        const { out, client } = contextOf(command);
        const created = await client.request<{ tenant: Tenant; key: { id: string; key: string } }>(
          "POST",
          "/admin/v1/tenants",
          {
            body: {
              slug: flags.slug,
              name: flags.name,
              planId: await planId(client, flags.plan),
              ...(flags.overrides === undefined ? {} : { overrides: flags.overrides }),
            },
            // The client's one retry (after a lost answer) gets this tenant back, never a second one.
            idempotencyKey: crypto.randomUUID(),
          },
        );
        out.data(
          created,
          (c) =>
            `${formatRecord(row(c.tenant))}\n\nfirst key ${c.key.id} (shown once, store it now):\n${c.key.key}`,
        );
      },
    );

  tenants
    .command("update")
    .description("change a tenant (only the flags given)")
    .argument("<tenant>", "tenant id or slug")
    .option("--name <name>", "display name")
    .option("--plan <plan>", "move to this plan (id or name)")
    .addOption(
      new Option("--status <status>", "set the status (the operator's)").choices([
        "active",
        "suspended",
        "past_due",
      ]),
    )
    .option(
      "--overrides <json>",
      "JSON Merge Patch of the limit overrides (null removes one; 'null' all)",
      json,
    )
    .action(
      async (
        ref: string,
        flags: { name?: string; plan?: string; status?: string; overrides?: unknown },
        command: Command,
      ) => {
        const { client } = contextOf(command);
        await patch(command, ref, {
          ...(flags.name === undefined ? {} : { name: flags.name }),
          ...(flags.plan === undefined ? {} : { planId: await planId(client, flags.plan) }),
          ...(flags.status === undefined ? {} : { status: flags.status }),
          ...(flags.overrides === undefined ? {} : { overrides: flags.overrides }),
        });
      },
    );

  tenants
    .command("suspend")
    .description("suspend a tenant: its requests answer 403 tenant_suspended at once")
    .argument("<tenant>", "tenant id or slug")
    .action((ref: string, _flags, command: Command) => patch(command, ref, { status: "suspended" }));

  tenants
    .command("reinstate")
    .description("make a suspended or past-due tenant active again")
    .argument("<tenant>", "tenant id or slug")
    .action((ref: string, _flags, command: Command) => patch(command, ref, { status: "active" }));

  return tenants;
}
