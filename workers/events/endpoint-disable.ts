/**
 * Switching a tenant's webhook endpoint off because of what its receiver did — it answered
 * `410 Gone`, or every attempt failed for 5 days — and telling the tenant: its pending deliveries
 * are cancelled, a `webhook.endpoint.disabled` event is stored (the portal lists it; the tenant's
 * other endpoints get it) and, when mail is configured and the tenant has an address, a mail.
 *
 * `disableEndpoint` runs inside the caller's transaction and only switches off an endpoint that is
 * still on, so two attempts failing at once disable it, and tell the tenant, once.
 * `announceDisabled` runs after the commit.
 */
import { and, eq, lte } from "drizzle-orm";
import { html } from "hono/html";
import { tenants, webhookDeliveries, webhookEndpoints } from "../../schema";
import type { Bindings } from "../env";
import { log } from "../log";
import type { Tx } from "../shared/db";
import { sendMail } from "../shared/mail";
import type { EventData } from "./catalog";
import { dispatchDeliveries, recordEvents } from "./emit";

/** An endpoint whose attempts have all failed for this long is switched off. */
export const FAILING_DISABLE_MS = 5 * 86_400_000;

export type DisableReason = EventData<"webhook.endpoint.disabled">["reason"];

/** What `announceDisabled` needs once the transaction that disabled the endpoint has committed. */
export interface DisabledEndpoint {
  endpointId: string;
  tenantId: string;
  url: string;
  reason: DisableReason;
  /** The tenant's address (`tenants.email`), when it has one. */
  email: string | null;
  /** The deliveries of the `webhook.endpoint.disabled` event to the tenant's other endpoints. */
  deliveryIds: string[];
}

/**
 * Disables the endpoint if it is still enabled — for `failing`, only if it has been failing since
 * 5 days before `now` — cancels its pending deliveries and records the event. Null when nothing
 * changed (already off, or not failing long enough).
 */
export async function disableEndpoint(
  tx: Tx,
  endpointId: string,
  reason: DisableReason,
  now: Date,
): Promise<DisabledEndpoint | null> {
  const [endpoint] = await tx
    .update(webhookEndpoints)
    // The failing streak ends here: re-enabled, the endpoint starts from a clean slate.
    .set({ enabled: false, disabledReason: reason, failingSince: null, updatedAt: now })
    .where(
      and(
        eq(webhookEndpoints.id, endpointId),
        eq(webhookEndpoints.enabled, true),
        reason === "failing"
          ? lte(webhookEndpoints.failingSince, new Date(now.getTime() - FAILING_DISABLE_MS))
          : undefined,
      ),
    )
    .returning({ tenantId: webhookEndpoints.tenantId, url: webhookEndpoints.url });
  if (!endpoint) return null;
  await tx
    .update(webhookDeliveries)
    .set({ status: "cancelled", nextAttemptAt: null, claimedUntil: null, updatedAt: now })
    .where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.status, "pending")));
  const deliveryIds = await recordEvents(tx, [
    {
      tenantId: endpoint.tenantId,
      type: "webhook.endpoint.disabled",
      data: { endpointId, url: endpoint.url, reason },
      at: now,
    },
  ]);
  const [tenant] = await tx
    .select({ email: tenants.email })
    .from(tenants)
    .where(eq(tenants.id, endpoint.tenantId));
  return { endpointId, ...endpoint, reason, email: tenant?.email ?? null, deliveryIds };
}

/** Queues the event's deliveries and mails the tenant. Never throws: the endpoint is off either way. */
export async function announceDisabled(env: Bindings, disabled: DisabledEndpoint): Promise<void> {
  log.warn("webhook endpoint disabled", {
    tenant_id: disabled.tenantId,
    endpoint_id: disabled.endpointId,
    reason: disabled.reason,
  });
  await dispatchDeliveries(env, disabled.deliveryIds);
  if (disabled.email) await sendMail(env, { to: disabled.email, ...(await disabledMail(disabled)) });
}

/** The mail's subject and bodies (the URL is the tenant's own input: escaped in the HTML). */
async function disabledMail(
  disabled: DisabledEndpoint,
): Promise<{ subject: string; text: string; html: string }> {
  const why =
    disabled.reason === "gone"
      ? "its receiver answered 410 Gone, which asks us to stop sending"
      : "every delivery to it has failed for 5 days";
  const subject = "A webhook endpoint was disabled";
  const lead = `We disabled your webhook endpoint ${disabled.url} (${disabled.endpointId}) because ${why}.`;
  const next =
    "Its pending deliveries were cancelled. Fix the receiver, then enable the endpoint again in the portal or with PATCH /gateway/v1/webhooks/:id.";
  const body = await html`<p>${lead}</p>
<p>${next}</p>`;
  return { subject, text: `${lead}\n\n${next}\n`, html: body.toString() };
}
