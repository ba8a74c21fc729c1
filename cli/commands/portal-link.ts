/**
 * `gw portal-link <tenant>`: a one-time link into the tenant portal
 * (`POST /admin/v1/tenants/:id/portal-sessions` → `{ url, expiresAt }`). The URL alone goes to
 * stdout, so `open "$(gw portal-link acme)"` works; when it expires goes to stderr.
 */
import { Command } from "commander";
import { contextOf, tenantId } from "../context";

/** The `portal-link` command. */
export function portalLinkCommand(): Command {
  return new Command("portal-link")
    .description("make a one-time sign-in link to the tenant portal")
    .argument("<tenant>", "tenant id or slug")
    .action(async (ref: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const session = await client.request<{ url: string; expiresAt: string }>(
        "POST",
        `/admin/v1/tenants/${encodeURIComponent(id)}/portal-sessions`,
        { body: {} },
      );
      out.data(session, (s) => s.url);
      if (!out.json) out.note(`valid once, until ${session.expiresAt}`);
    });
}
