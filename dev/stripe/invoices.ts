/**
 * The Stripe stand-in's invoices (api/invoices) and the billing cycle that makes them: when the
 * stand-in's clock passes a subscription's period end, the period is closed into an invoice, the
 * invoice finalized and its payment attempted, failed payments retried, and the subscription moved
 * through `past_due` to `canceled` (or `unpaid`) — each step recorded as an Event (./events.ts).
 *
 * Lines of a period's invoice: each licensed price × quantity, each metered price priced
 * (./pricing.ts) from its meter's aggregated events of the customer in [period start, period end),
 * and the customer's pending invoice items of this subscription (prorations).
 * Choices:
 * - The stand-in makes no invoice when a subscription starts, so a licensed price is billed at the
 *   end of the period it covers (Stripe bills it in advance), together with that period's usage:
 *   every period is billed exactly once.
 * - An invoice is finalized and charged at once (Stripe waits about an hour after the draft).
 * - A payment succeeds or fails as the customer's payment outcome says (default succeed); an
 *   amount due of 0 is paid without a charge. A failed charge is retried every `intervalDays`
 *   until `attempts` charges have failed (Stripe's smart retries, here a fixed schedule); then the
 *   subscription is canceled (or left `unpaid`, whose later invoices stay drafts).
 * - A past_due or unpaid subscription is `active` again when its latest invoice is paid (Stripe:
 *   "pay the most recent invoice to reactivate the subscription").
 * - The customer's balance (negative: credit) is applied to the invoice; a credit larger than the
 *   total stays on the balance.
 */
import { monthsAfter } from "./clock";
import { clockMoment, emit, type Moment, momentOf } from "./events";
import {
  type Account,
  type Invoice,
  type InvoiceLine,
  type Subscription,
  type SubscriptionItem,
  subscriptionOut,
  UNUSED_INVOICE_FIELDS,
} from "./objects";
import { aggregate, priceAmount } from "./pricing";
import {
  allowOnly,
  type Call,
  invalid,
  newId,
  noSuch,
  optString,
  paginate,
  type Reply,
  StripeFault,
} from "./wire";

const DAY = 86_400;
const INVOICE_STATUSES = ["draft", "open", "paid", "uncollectible", "void"];

export interface RetryRules {
  /** Failed charges after which retrying stops (the first attempt counts). */
  attempts: number;
  intervalDays: number;
  /** What the subscription becomes when retrying stops. */
  exhausted: "canceled" | "unpaid";
}

export const DEFAULT_RETRY_RULES: RetryRules = { attempts: 3, intervalDays: 3, exhausted: "canceled" };

export function invoicing(rules: () => RetryRules, origin: () => string) {
  /**
   * Everything the clock has made due in one mode, in time order: period ends and payment retries
   * at or before `nowS`, each at its own instant.
   */
  function runDue(account: Account, livemode: boolean, nowS: number): void {
    for (;;) {
      let next: { at: number; run: (at: Moment) => void } | undefined;
      for (const sub of account.subscriptions.values()) {
        const end = sub.items.data[0]?.current_period_end;
        if (sub.status === "canceled" || end === undefined || end > nowS) continue;
        if (!next || end < next.at) next = { at: end, run: (at) => closePeriod(at, sub) };
      }
      for (const invoice of account.invoices.values()) {
        const due = invoice.next_payment_attempt;
        if (invoice.status !== "open" || due === null || due > nowS) continue;
        if (!next || due < next.at) next = { at: due, run: (at) => attempt(at, invoice) };
      }
      if (!next) return;
      next.run(clockMoment(account, livemode, next.at));
    }
  }

  function closePeriod(at: Moment, sub: Subscription): void {
    const { account } = at;
    const first = sub.items.data[0] as SubscriptionItem;
    const start = first.current_period_start;
    const end = first.current_period_end;
    const invoice = draft(at, sub, start, end);
    emit(at, "invoice.created", invoice);

    const after: Subscription = sub.cancel_at_period_end
      ? {
          ...sub,
          status: "canceled",
          canceled_at: at.nowS,
          ended_at: end,
          cancellation_details: {
            comment: null,
            feedback: null,
            feedback_option: null,
            reason: "cancellation_requested",
          },
          latest_invoice: invoice.id,
        }
      : {
          ...sub,
          latest_invoice: invoice.id,
          items: { ...sub.items, data: sub.items.data.map((item) => nextPeriod(sub, item, end)) },
        };
    account.subscriptions.set(sub.id, after);
    emitSubscriptionChange(at, sub, after);

    if (sub.status === "unpaid") return; // Stripe leaves an unpaid subscription's invoices as drafts
    finalize(at, invoice);
    attempt(at, invoice);
  }

  /** A draft invoice of the period [start, end), its pending invoice items attached. */
  function draft(at: Moment, sub: Subscription, start: number, end: number): Invoice {
    const { account } = at;
    const customer = account.customers.get(sub.customer);
    const id = newId("in", 24);
    const lines: InvoiceLine[] = sub.items.data.map((item) => itemLine(account, sub, item, id, start, end));
    for (const ii of account.invoiceItems.values()) {
      if (ii.customer !== sub.customer || ii.invoice !== null) continue;
      if (ii.parent.subscription_details.subscription !== sub.id) continue;
      account.invoiceItems.set(ii.id, { ...ii, invoice: id });
      lines.push({
        ...lineBase(ii.id.replace(/^ii_/, "il_"), id, ii.amount, ii.currency, at.livemode, sub.id),
        description: ii.description,
        parent: {
          type: "invoice_item_details",
          subscription_item_details: null,
          invoice_item_details: {
            invoice_item: ii.id,
            proration: ii.proration,
            proration_details: { credited_items: null },
            subscription: sub.id,
          },
        },
        period: ii.period,
        pricing: ii.pricing,
        quantity: ii.quantity,
        quantity_decimal: String(ii.quantity),
      });
    }
    const total = lines.reduce((sum, line) => sum + line.amount, 0);
    const invoice: Invoice = {
      ...structuredClone(UNUSED_INVOICE_FIELDS),
      id,
      object: "invoice",
      account_country: null,
      account_name: null,
      amount_due: 0,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: 0,
      amount_shipping: 0,
      attempt_count: 0,
      attempted: false,
      auto_advance: true,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
      billing_reason: "subscription_cycle",
      collection_method: sub.collection_method,
      created: at.nowS,
      currency: sub.currency,
      customer: sub.customer,
      customer_email: customer?.email ?? null,
      customer_name: customer?.name ?? null,
      default_payment_method: null,
      description: null,
      discounts: [],
      due_date: null,
      effective_at: null,
      ending_balance: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      issuer: { type: "self" },
      lines: {
        object: "list",
        data: lines,
        has_more: false,
        url: `/v1/invoices/${id}/lines`,
      },
      livemode: at.livemode,
      metadata: {},
      next_payment_attempt: null,
      number: null,
      parent: {
        quote_details: null,
        subscription_details: { metadata: { ...sub.metadata }, subscription: sub.id },
        type: "subscription_details",
      },
      period_end: end,
      period_start: start,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      starting_balance: customer?.balance ?? 0,
      status: "draft",
      status_transitions: {
        finalized_at: null,
        marked_uncollectible_at: null,
        paid_at: null,
        voided_at: null,
      },
      subtotal: total,
      subtotal_excluding_tax: total,
      total,
      total_discount_amounts: [],
      total_excluding_tax: total,
      total_taxes: [],
      webhooks_delivered_at: null,
    };
    account.invoices.set(id, invoice);
    return invoice;
  }

  /** Open: numbered (`<customer prefix>-0001`, …), hosted, the customer's balance applied. */
  function finalize(at: Moment, invoice: Invoice): void {
    const customer = at.account.customers.get(invoice.customer);
    const balance = customer?.balance ?? 0;
    const owed = invoice.total + balance;
    invoice.starting_balance = balance;
    invoice.ending_balance = Math.min(0, owed);
    invoice.amount_due = Math.max(0, owed);
    invoice.amount_remaining = invoice.amount_due;
    if (customer) {
      customer.balance = invoice.ending_balance;
      invoice.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence).padStart(4, "0")}`;
      customer.next_invoice_sequence += 1;
    }
    invoice.status = "open";
    invoice.effective_at = at.nowS;
    invoice.status_transitions.finalized_at = at.nowS;
    invoice.hosted_invoice_url = `${origin()}/invoices/${invoice.id}`;
    invoice.invoice_pdf = `${origin()}/invoices/${invoice.id}/pdf`;
    emit(at, "invoice.finalized", invoice);
  }

  /** Charges an open invoice's amount remaining; true when it is paid. */
  function attempt(at: Moment, invoice: Invoice): boolean {
    const { account } = at;
    invoice.attempted = true;
    const outcome = account.paymentOutcomes.get(invoice.customer) ?? "succeed";
    if (invoice.amount_remaining > 0) invoice.attempt_count += 1;
    if (invoice.amount_remaining === 0 || outcome === "succeed") {
      invoice.amount_paid += invoice.amount_remaining;
      invoice.amount_remaining = 0;
      invoice.status = "paid";
      invoice.next_payment_attempt = null;
      invoice.status_transitions.paid_at = at.nowS;
      emit(at, "invoice.paid", invoice);
      emit(at, "invoice.payment_succeeded", invoice);
      reactivate(at, invoice);
      return true;
    }
    const { attempts, intervalDays, exhausted } = rules();
    const more = invoice.attempt_count < attempts;
    invoice.next_payment_attempt = more ? at.nowS + intervalDays * DAY : null;
    emit(at, "invoice.payment_failed", invoice);
    const sub = account.subscriptions.get(invoice.parent.subscription_details.subscription);
    if (!sub || sub.status === "canceled") return false;
    let after: Subscription = sub.status === "active" ? { ...sub, status: "past_due" } : sub;
    if (!more && exhausted === "unpaid") after = { ...after, status: "unpaid" };
    if (!more && exhausted === "canceled")
      after = {
        ...after,
        status: "canceled",
        canceled_at: at.nowS,
        ended_at: at.nowS,
        cancellation_details: {
          comment: null,
          feedback: null,
          feedback_option: null,
          reason: "payment_failed",
        },
      };
    if (after === sub) return false;
    account.subscriptions.set(sub.id, after);
    emitSubscriptionChange(at, sub, after);
    return false;
  }

  function reactivate(at: Moment, invoice: Invoice): void {
    const sub = at.account.subscriptions.get(invoice.parent.subscription_details.subscription);
    if (!sub || (sub.status !== "past_due" && sub.status !== "unpaid")) return;
    if (sub.latest_invoice !== invoice.id) return;
    const after: Subscription = { ...sub, status: "active" };
    at.account.subscriptions.set(sub.id, after);
    emit(at, "customer.subscription.updated", subscriptionOut(after), subscriptionOut(sub));
  }

  function listInvoices(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "customer",
      "subscription",
      "status",
      "collection_method",
      "limit",
      "starting_after",
      "ending_before",
      "expand",
    ]);
    const customer = optString(p, "customer");
    const subscription = optString(p, "subscription");
    const status = optString(p, "status");
    if (status !== undefined && !INVOICE_STATUSES.includes(status))
      throw invalid(`Invalid status: must be one of ${INVOICE_STATUSES.join(", ")}`, { param: "status" });
    const collection = optString(p, "collection_method");
    const invoices = [...call.account.invoices.values()]
      .filter(
        (inv) =>
          (customer === undefined || inv.customer === customer) &&
          (subscription === undefined || inv.parent.subscription_details.subscription === subscription) &&
          (status === undefined || inv.status === status) &&
          (collection === undefined || inv.collection_method === collection),
      )
      .reverse();
    return { status: 200, body: paginate(invoices, p, "/v1/invoices") };
  }

  function retrieveInvoice(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    return { status: 200, body: invoiceOf(call.account, id) };
  }

  /**
   * `POST /v1/invoices/:id/pay` (api/invoices/pay): a draft is finalized first; a declined charge is
   * Stripe's 402 `card_error` `card_declined`, after the attempt is counted and its events recorded.
   * `paid_out_of_band=true` marks it paid without a charge.
   */
  function payInvoice(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand", "off_session", "paid_out_of_band", "payment_method"]);
    const invoice = invoiceOf(call.account, id);
    if (invoice.status === "paid")
      throw invalid("Invoice is already paid.", { code: "invoice_already_paid" });
    if (invoice.status !== "open" && invoice.status !== "draft")
      throw invalid(`You cannot pay an invoice with status ${invoice.status}.`, { code: "invoice_not_open" });
    const at = momentOf(call);
    if (invoice.status === "draft") finalize(at, invoice);
    if (optString(call.params, "paid_out_of_band") === "true") {
      invoice.amount_remaining = 0;
      attempt(at, invoice);
      return { status: 200, body: invoice };
    }
    if (!attempt(at, invoice))
      throw new StripeFault(402, "card_error", "Your card was declined.", { code: "card_declined" });
    return { status: 200, body: invoice };
  }

  return { runDue, listInvoices, retrieveInvoice, payInvoice };
}

/** `customer.subscription.deleted` when it ended (no previous attributes, as Stripe), else `.updated`. */
function emitSubscriptionChange(at: Moment, before: Subscription, after: Subscription): void {
  if (after.status === "canceled") emit(at, "customer.subscription.deleted", subscriptionOut(after));
  else emit(at, "customer.subscription.updated", subscriptionOut(after), subscriptionOut(before));
}

export function invoiceOf(account: Account, id: string): Invoice {
  const invoice = account.invoices.get(id);
  if (!invoice) throw noSuch("invoice", id, "id", 404);
  return invoice;
}

/** The line of one subscription item for [start, end): its quantity, or its meter's usage. */
function itemLine(
  account: Account,
  sub: Subscription,
  item: SubscriptionItem,
  invoiceId: string,
  start: number,
  end: number,
): InvoiceLine {
  const { price } = item;
  const meter = price.recurring?.meter ? account.meters.get(price.recurring.meter) : undefined;
  const quantity = meter
    ? aggregate(
        meter.default_aggregation.formula,
        account.events.filter(
          (e) =>
            e.meter === meter.id && e.customer === sub.customer && e.timestamp >= start && e.timestamp < end,
        ),
      )
    : (item.quantity ?? 1);
  const product = account.products.get(price.product);
  return {
    ...lineBase(
      newId("il", 24),
      invoiceId,
      priceAmount(price, quantity),
      price.currency,
      sub.livemode,
      sub.id,
    ),
    description: `${quantity} × ${product?.name ?? price.nickname ?? price.id}`,
    parent: {
      type: "subscription_item_details",
      invoice_item_details: null,
      subscription_item_details: {
        invoice_item: null,
        proration: false,
        proration_details: { credited_items: null },
        subscription: sub.id,
        subscription_item: item.id,
      },
    },
    period: { start, end },
    pricing: {
      price_details: { price: price.id, product: price.product },
      type: "price_details",
      unit_amount_decimal: price.unit_amount_decimal,
    },
    quantity,
    quantity_decimal: String(quantity),
  };
}

function lineBase(
  id: string,
  invoice: string,
  amount: number,
  currency: string,
  livemode: boolean,
  subscription: string,
) {
  return {
    id,
    object: "line_item" as const,
    amount,
    currency,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice,
    livemode,
    metadata: {},
    pretax_credit_amounts: [],
    subscription,
    subtotal: amount,
    taxes: [],
  };
}

/** The item moved to the period after `end`, counted in months from the billing cycle anchor. */
function nextPeriod(sub: Subscription, item: SubscriptionItem, end: number): SubscriptionItem {
  let n = 1;
  while (monthsAfter(sub.billing_cycle_anchor, n) <= end) n += 1;
  return { ...item, current_period_start: end, current_period_end: monthsAfter(sub.billing_cycle_anchor, n) };
}
