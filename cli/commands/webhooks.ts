/**
 * `gw webhooks list|dead-letters|retry`: a tenant's webhook endpoints and the operator's dead-letter
 * store over the admin API (`/admin/v1/tenants/:id/webhooks`, `/admin/v1/webhooks/dead-letters`,
 * `/admin/v1/webhooks/deliveries/:id/retry`). A retry sends a delivery again (due now, `replays` + 1);
 * the gateway refuses it with 409 (exit 5) while its endpoint is disabled.
 */
import { Command } from "commander";
import type { z } from "zod";
import type { WebhookDeliverySchema, WebhookEndpointSchema } from "../../workers/api/webhook-schemas";
import { contextOf, tenantId } from "../context";
import { formatRecord, formatTable } from "../output";

/** An endpoint as the admin API answers it (its secret is never listed). */
type Endpoint = z.infer<typeof WebhookEndpointSchema>;

/** A delivery as the admin API answers it; a dead letter also names its endpoint's URL. */
type Delivery = z.infer<typeof WebhookDeliverySchema> & { endpointUrl?: string };

const encode = encodeURIComponent;

const endpointRow = (e: Endpoint) => ({
  id: e.id,
  url: e.url,
  events: e.eventTypes.length === 0 ? "all" : e.eventTypes,
  state: e.enabled ? "enabled" : `disabled (${e.disabledReason ?? "by hand"})`,
  failing: e.failingSince,
  description: e.description,
});

const deadRow = (d: Delivery) => ({
  died: d.updatedAt,
  id: d.id,
  tenant: d.tenantId,
  event: d.eventType,
  endpoint: d.endpointUrl,
  attempts: d.attemptCount,
  last: d.lastStatus ?? d.lastError ?? null,
  replays: d.replays,
});

/** The `webhooks` command group. */
export function webhooksCommand(): Command {
  const webhooks = new Command("webhooks").description(
    "webhook endpoints and dead deliveries: list, dead-letters, retry (409, exit 5: endpoint disabled)",
  );

  webhooks
    .command("list")
    .description("a tenant's webhook endpoints, newest first")
    .requiredOption("--tenant <tenant>", "tenant id or slug")
    .action(async (flags: { tenant: string }, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, flags.tenant);
      const all = await client.all<Endpoint>(`/admin/v1/tenants/${encode(id)}/webhooks`);
      out.data(all, (es) => (es.length === 0 ? "no webhook endpoints" : formatTable(es.map(endpointRow))));
    });

  webhooks
    .command("dead-letters")
    .description("deliveries whose retries are exhausted, most recent death first")
    .option("--tenant <tenant>", "only this tenant's (id or slug)")
    .action(async (flags: { tenant?: string }, command: Command) => {
      const { out, client } = contextOf(command);
      const tenant = flags.tenant === undefined ? undefined : await tenantId(client, flags.tenant);
      const all = await client.all<Delivery>("/admin/v1/webhooks/dead-letters", { tenant });
      out.data(all, (ds) => (ds.length === 0 ? "no dead webhook deliveries" : formatTable(ds.map(deadRow))));
    });

  webhooks
    .command("retry")
    .description("send a delivery again, due now (replays + 1)")
    .argument("<delivery>", "delivery id (dlv_…)")
    .action(async (id: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const delivery = await client.request<Delivery>(
        "POST",
        `/admin/v1/webhooks/deliveries/${encode(id)}/retry`,
      );
      out.data(delivery, (d) =>
        formatRecord({
          id: d.id,
          tenant: d.tenantId,
          event: d.eventType,
          status: d.status,
          due: d.nextAttemptAt,
          attempts: d.attemptCount,
          replays: d.replays,
        }),
      );
    });

  return webhooks;
}
