/**
 * What every command gets: its output (human or `--json`), and the admin client for the gateway the
 * global flags, environment and config file name. Also the look-ups commands share: a tenant by id
 * or slug, a plan by id or name.
 */
import type { Command } from "commander";
import { AdminClient } from "./client";
import { configPath, readConfig, requireTarget, resolveTarget } from "./config";
import { CliError, EXIT } from "./errors";
import { createOutput, type Output } from "./output";

/** The global flags (`gw --url … --token … --json <command>`). */
export interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

/** A command's output and its admin client. */
export interface Context {
  out: Output;
  client: AdminClient;
}

/** The context of the command that is running (its flags merged with the global ones). */
export function contextOf(command: Command): Context {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const out = createOutput(Boolean(flags.json));
  const file = readConfig(configPath(), (line) => out.note(`gw: warning: ${line}`));
  const target = requireTarget(resolveTarget(flags, process.env, file));
  return { out, client: new AdminClient(target.url, target.token) };
}

interface Named {
  id: string;
}

/**
 * A tenant's id from what the operator typed: a `ten_…` id as is, anything else as a slug
 * (slugs are lower-case letters, digits and dashes, so they never look like an id).
 */
export async function tenantId(client: AdminClient, ref: string): Promise<string> {
  if (ref.startsWith("ten_")) return ref;
  const page = await client.request<{ data: Named[] }>("GET", "/admin/v1/tenants", { query: { slug: ref } });
  const found = page.data[0];
  if (!found)
    throw new CliError(EXIT.notFound, {
      title: "Not found",
      detail: `No tenant with slug '${ref}'.`,
      code: "not_found",
    });
  return found.id;
}

/** A plan's id from a `plan_…` id or a plan name (names are unique). */
export async function planId(client: AdminClient, ref: string): Promise<string> {
  if (ref.startsWith("plan_")) return ref;
  const plans = await client.all<Named & { name: string }>("/admin/v1/plans");
  const found = plans.find((p) => p.name === ref);
  if (!found)
    throw new CliError(EXIT.notFound, {
      title: "Not found",
      detail: `No plan named '${ref}'.`,
      code: "not_found",
    });
  return found.id;
}
