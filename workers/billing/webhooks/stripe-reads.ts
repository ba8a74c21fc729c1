/**
 * The webhook receiver's reads of Stripe: the CURRENT invoice or subscription an event names, so
 * what the gateway applies never depends on the order events arrive in (an event's own snapshot
 * may be older than one already applied). One small module so every read maps failures the same way:
 * an object Stripe no longer has → null (the event is recorded, nothing applied); Stripe
 * unreachable, rate limiting or failing → `service_unavailable` (503), so Stripe redelivers the
 * event later and it is not recorded.
 */
import type Stripe from "stripe";
import { GatewayError } from "../../errors";
import { log } from "../../log";

async function read<T>(what: string, id: string, fetchIt: () => Promise<T>): Promise<T | null> {
  try {
    return await fetchIt();
  } catch (error) {
    const e = error as { type?: string; code?: string; statusCode?: number; message?: string };
    if (e.code === "resource_missing" || e.statusCode === 404) return null;
    log.warn("stripe read failed", { object: what, id, error: String(e.message ?? error) });
    throw new GatewayError(
      "service_unavailable",
      "Stripe could not be reached to read the event's object. Retry later.",
      {
        headers: { "retry-after": "60" },
      },
    );
  }
}

export const currentInvoice = (stripe: Stripe, id: string) =>
  read("invoice", id, () => stripe.invoices.retrieve(id));

export const currentSubscription = (stripe: Stripe, id: string) =>
  read("subscription", id, () => stripe.subscriptions.retrieve(id));

/** The id of an expandable field (`"cus_…"` or `{ id: "cus_…", … }`). */
export function idOf(field: string | { id: string } | null | undefined): string | null {
  if (!field) return null;
  return typeof field === "string" ? field : field.id;
}

/** The subscription an invoice bills (`parent.subscription_details.subscription` since API 2025-03-31). */
export const invoiceSubscriptionId = (invoice: Stripe.Invoice): string | null =>
  idOf(invoice.parent?.subscription_details?.subscription);

export const currentCheckoutSession = (stripe: Stripe, id: string) =>
  read("checkout session", id, () => stripe.checkout.sessions.retrieve(id));
