/**
 * `invoice.finalized`, `invoice.paid`, `invoice.payment_failed`: the invoice is re-read from Stripe
 * and its current state upserted into `invoices` (what the billing views list); when it bills the
 * tenant's current subscription, that subscription is re-read too and drives dunning
 * (subscriptions.ts) — a failed payment makes it `past_due`, a paid invoice `active` again. So a
 * `paid` that arrives before the `payment_failed` of the same invoice ends in the state Stripe has.
 *
 * The tenant is told in the same transaction: `invoice.paid` once per invoice (its event id is
 * derived from the invoice's, so whichever Stripe event first sees it paid emits it), and
 * `invoice.payment_failed` once per Stripe `invoice.payment_failed` event (each failed charge), unless
 * the invoice is paid by the time the event is applied.
 */
import type Stripe from "stripe";
import { invoices } from "../../../schema";
import type { NewEvent } from "../../events/catalog";
import { recordEvents } from "../../events/emit";
import type { Tx } from "../../shared/db";
import type { EventEffect, EventHandler } from "./event-handler";
import { currentInvoice, currentSubscription, idOf, invoiceSubscriptionId } from "./stripe-reads";
import { applySubscription, tenantOfCustomer } from "./subscriptions";

/** The `invoices` row of a Stripe invoice (amounts in the currency's minor unit, as Stripe sends them). */
export function invoiceRow(tenantId: string, invoice: Stripe.Invoice, now: number) {
  return {
    id: invoice.id as string,
    tenantId,
    stripeSubscriptionId: invoiceSubscriptionId(invoice),
    number: invoice.number,
    status: invoice.status ?? "draft",
    currency: invoice.currency,
    subtotal: invoice.subtotal,
    total: invoice.total,
    amountDue: invoice.amount_due,
    amountPaid: invoice.amount_paid,
    amountRemaining: invoice.amount_remaining,
    periodStart: new Date(invoice.period_start * 1000),
    periodEnd: new Date(invoice.period_end * 1000),
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    invoicePdf: invoice.invoice_pdf ?? null,
    stripeCreatedAt: new Date(invoice.created * 1000),
    updatedAt: new Date(now),
  };
}

async function upsertInvoice(tx: Tx, row: ReturnType<typeof invoiceRow>): Promise<void> {
  const { id: _id, tenantId: _tenant, stripeCreatedAt: _created, ...changes } = row;
  await tx.insert(invoices).values(row).onConflictDoUpdate({ target: invoices.id, set: changes });
}

/** The tenant's events of an invoice as Stripe has it now, on the Stripe event `stripeEvent`. */
function invoiceEvents(
  tenantId: string,
  invoice: Stripe.Invoice,
  stripeEvent: Pick<Stripe.Event, "id" | "type">,
  now: number,
): NewEvent[] {
  const id = invoice.id as string;
  const at = new Date(now);
  if (invoice.status === "paid") {
    return [
      {
        id: `evt_invoice_paid_${id}`,
        tenantId,
        type: "invoice.paid",
        data: {
          invoiceId: id,
          number: invoice.number,
          currency: invoice.currency,
          amountPaid: invoice.amount_paid,
        },
        at,
      },
    ];
  }
  if (stripeEvent.type !== "invoice.payment_failed") return [];
  return [
    {
      id: `evt_invoice_failed_${stripeEvent.id}`,
      tenantId,
      type: "invoice.payment_failed",
      data: {
        invoiceId: id,
        number: invoice.number,
        currency: invoice.currency,
        amountDue: invoice.amount_due,
      },
      at,
    },
  ];
}

export const onInvoice: EventHandler = async (event, ctx): Promise<EventEffect> => {
  const id = (event.data.object as { id?: unknown }).id;
  if (typeof id !== "string") return { outcome: "missing_object", tenantId: null };
  const invoice = await currentInvoice(ctx.stripe, id);
  if (!invoice) return { outcome: "missing_object", tenantId: null };
  const tenant = await tenantOfCustomer(ctx.db, idOf(invoice.customer));
  if (!tenant) return { outcome: "unknown_customer", tenantId: null };
  const subscriptionId = invoiceSubscriptionId(invoice);
  const subscription =
    subscriptionId && subscriptionId === tenant.stripeSubscriptionId
      ? await currentSubscription(ctx.stripe, subscriptionId)
      : null;
  const row = invoiceRow(tenant.id, invoice, ctx.now);
  return {
    outcome: "applied",
    tenantId: tenant.id,
    apply: async (tx) => {
      await upsertInvoice(tx, row);
      const told = await recordEvents(tx, invoiceEvents(tenant.id, invoice, event, ctx.now));
      const status = subscription ? await applySubscription(tx, ctx, tenant.id, subscription) : [];
      return [...told, ...status];
    },
  };
};
