/**
 * A billed tenant's Stripe side as the Stripe stand-in (dev/stripe-standin.ts) makes it, through the
 * real `stripe` package and the stand-in's control endpoints: the period invoiced by moving the
 * stand-in's clock to its end, the charge declined or paid as the customer's payment outcome says,
 * the retries, `POST /v1/invoices/:id/pay` — and the Events the stand-in recorded on the way
 * (`GET /v1/events`, each with its snapshot of the object then), for the webhook tests to deliver.
 * Move the stand-in's clock only inside a test: test/setup-each.ts puts it back before each one.
 */
import type Stripe from "stripe";
import { standinStripe } from "./stripe-standin";
import { advanceStandinTo, setPaymentOutcome, standinControl } from "./stripe-standin-control";
import type { BilledTenant } from "./stripe-webhooks";

export const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

/** The events the stand-in recorded about one customer during a step, oldest first. */
export interface Recorded {
  events: Stripe.Event[];
  /** The one event of `type` (throws unless there is exactly one). */
  one(type: string): Stripe.Event;
  /** The latest event of `type` (throws when there is none). */
  last(type: string): Stripe.Event;
}

const aboutCustomer = (event: Stripe.Event, customer: string) => {
  const object = event.data.object as { id?: string; customer?: unknown };
  return object.id === customer || object.customer === customer;
};

/** Every event recorded after `marker` (an event id), oldest first. */
async function eventsAfter(marker: string): Promise<Stripe.Event[]> {
  const out: Stripe.Event[] = [];
  let before = marker;
  for (;;) {
    const page = await stripe.events.list({ limit: 100, ending_before: before });
    out.push(...[...page.data].reverse());
    const newest = page.data[0];
    if (!page.has_more || !newest) return out;
    before = newest.id;
  }
}

/** Runs `step` and returns what the stand-in recorded about `customer` meanwhile. */
export async function recording(customer: string, step: () => Promise<unknown>): Promise<Recorded> {
  const marker = (await stripe.events.list({ limit: 1 })).data[0]?.id;
  if (!marker) throw new Error("the stand-in has recorded no event yet");
  await step();
  const events = (await eventsAfter(marker)).filter((e) => aboutCustomer(e, customer));
  return {
    events,
    one(type) {
      const found = events.filter((e) => e.type === type);
      if (found.length !== 1)
        throw new Error(`${found.length} ${type} events, not 1: ${events.map((e) => e.type).join(", ")}`);
      return found[0] as Stripe.Event;
    },
    last(type) {
      const found = events.filter((e) => e.type === type).at(-1);
      if (!found) throw new Error(`no ${type} event: ${events.map((e) => e.type).join(", ")}`);
      return found;
    },
  };
}

/** The end of the tenant's subscription's current period, as the stand-in has it (epoch s). */
export async function periodEnd(subscriptionId: string): Promise<number> {
  const subscription = await stripe.subscriptions.retrieve(subscriptionId);
  const end = subscription.items.data[0]?.current_period_end;
  if (end === undefined) throw new Error(`subscription ${subscriptionId} has no items`);
  return end;
}

/**
 * Moves the stand-in's clock to the end of the tenant's current period: the period is invoiced and
 * charged, the charge `outcome` as given (a decline leaves the invoice open and the subscription
 * past_due). Returns the recorded events and the invoice's id.
 */
export async function billPeriod(
  t: BilledTenant,
  outcome: "succeed" | "fail",
): Promise<Recorded & { invoiceId: string }> {
  await setPaymentOutcome(t.customerId, outcome);
  const end = await periodEnd(t.subscriptionId);
  const recorded = await recording(t.customerId, () => advanceStandinTo(end));
  const invoice = recorded.one("invoice.finalized").data.object as Stripe.Invoice;
  return { ...recorded, invoiceId: invoice.id as string };
}

/** Pays an open invoice with a charge that succeeds (`POST /v1/invoices/:id/pay`). */
export async function payInvoice(t: BilledTenant, invoiceId: string): Promise<Recorded> {
  await setPaymentOutcome(t.customerId, "succeed");
  return recording(t.customerId, () => stripe.invoices.pay(invoiceId));
}

/** Moves the stand-in's clock to the invoice's next payment attempt (the charge as the payment outcome says). */
export async function retryCharge(t: BilledTenant, invoiceId: string): Promise<Recorded> {
  const next = (await stripe.invoices.retrieve(invoiceId)).next_payment_attempt;
  if (next === null) throw new Error(`invoice ${invoiceId} has no next payment attempt`);
  return recording(t.customerId, () => advanceStandinTo(next));
}

/** The stand-in's payment retry rules until the next test (test/setup-each.ts puts them back). */
export async function retryRules(rules: {
  attempts?: number;
  interval_days?: number;
  exhausted?: "canceled" | "unpaid";
}): Promise<void> {
  const { status, body } = await standinControl("/_standin/billing/retries", rules);
  if (status !== 200) throw new Error(`retry rules answered ${status}: ${JSON.stringify(body)}`);
}
