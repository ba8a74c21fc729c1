/**
 * The Stripe stand-in's billing cycle, driven through the real `stripe` package inside workerd:
 * when its clock passes a period's end it invoices the period (base fee + metered usage priced by
 * the price's tiers + pending invoice items), numbers and finalizes the invoice, charges it as the
 * customer's payment outcome says, retries failures, and records every step as an Event.
 * Each test makes its own customers and moves the stand-in's clock from the real now.
 */
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { stripeError } from "../support/stripe-error";
import { STANDIN, standinStripe } from "../support/stripe-standin";
import {
  advanceStandinTo,
  setPaymentOutcome,
  standinControl,
  standinNow,
} from "../support/stripe-standin-control";

const DAY = 86_400;
const uniq = () => crypto.randomUUID().slice(0, 8);
const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

type Tiers = Stripe.PriceCreateParams.Tier[];

/** A product with a licensed base price (2 seats × 2900) and a metered price with `tiers`. */
async function plan(mode: "graduated" | "volume", tiers: Tiers) {
  const product = await stripe.products.create({ name: `plan-${uniq()}` });
  const meter = await stripe.billing.meters.create({
    display_name: "calls",
    event_name: `calls_${uniq()}`,
    default_aggregation: { formula: "sum" },
  });
  const base = await stripe.prices.create({
    product: product.id,
    currency: "usd",
    unit_amount: 2900,
    recurring: { interval: "month" },
  });
  const usage = await stripe.prices.create({
    product: product.id,
    currency: "usd",
    billing_scheme: "tiered",
    tiers_mode: mode,
    tiers,
    recurring: { interval: "month", usage_type: "metered", meter: meter.id },
  });
  return { meter, base, usage };
}

/** A customer subscribed to `p`, with `units` of usage in the current period (in several events). */
async function subscriber(p: Awaited<ReturnType<typeof plan>>, units: number[]) {
  const customer = await stripe.customers.create({ name: `c-${uniq()}` });
  const sub = await stripe.subscriptions.create({
    customer: customer.id,
    items: [{ price: p.base.id, quantity: 2 }, { price: p.usage.id }],
  });
  for (const value of units) {
    await stripe.billing.meterEvents.create({
      event_name: p.meter.event_name,
      payload: { stripe_customer_id: customer.id, value: String(value) },
    });
  }
  const end = sub.items.data[0]?.current_period_end ?? 0;
  return { customer, sub, end };
}

async function onlyInvoice(customer: string): Promise<Stripe.Invoice> {
  const list = await stripe.invoices.list({ customer });
  expect(list.data).toHaveLength(1);
  return list.data[0] as Stripe.Invoice;
}

/** The events about `id` (an invoice's or a subscription's) since `marker`, oldest first. */
async function eventsAbout(ids: string[], marker: string | undefined): Promise<Stripe.Event[]> {
  const page = await stripe.events.list({ limit: 100, ...(marker ? { ending_before: marker } : {}) });
  return page.data.filter((e) => ids.includes((e.data.object as { id: string }).id)).reverse();
}

async function newestEventId(): Promise<string | undefined> {
  return (await stripe.events.list({ limit: 1 })).data[0]?.id;
}

describe("Stripe stand-in: invoices at period end", () => {
  it("bills base fee + usage × graduated tiers (flat amounts, every tier boundary, zero usage), once per period", async () => {
    const p = await plan("graduated", [
      { up_to: 1000, unit_amount: 0, flat_amount: 500 },
      { up_to: 5000, unit_amount: 2, flat_amount: 100 },
      { up_to: "inf", unit_amount: 1 },
    ]);
    const cases: Array<[number[], number]> = [
      [[], 500], // zero usage: the first tier's flat amount is a base fee
      [[400, 600], 500],
      [[1000, 1], 500 + 2 + 100],
      [[2500, 2500], 500 + 4000 * 2 + 100],
      [[6000], 500 + 4000 * 2 + 100 + 1000],
    ];
    const subs = [];
    for (const [units] of cases) subs.push(await subscriber(p, units));
    await advanceStandinTo(Math.max(...subs.map((s) => s.end)));

    for (const [i, [units, usageAmount]] of cases.entries()) {
      const { customer, sub, end } = subs[i] as (typeof subs)[number];
      const invoice = await onlyInvoice(customer.id);
      const quantity = units.reduce((a, b) => a + b, 0);
      expect(invoice.lines.data.map((l) => [l.pricing?.price_details?.price, l.quantity, l.amount])).toEqual([
        [p.base.id, 2, 5800],
        [p.usage.id, quantity, usageAmount],
      ]);
      expect(invoice).toMatchObject({
        status: "paid",
        currency: "usd",
        subtotal: 5800 + usageAmount,
        total: 5800 + usageAmount,
        amount_due: 5800 + usageAmount,
        amount_paid: 5800 + usageAmount,
        amount_remaining: 0,
        attempt_count: 1,
        attempted: true,
        next_payment_attempt: null,
        period_start: sub.start_date,
        period_end: end,
        parent: { type: "subscription_details", subscription_details: { subscription: sub.id } },
      });
      const after = await stripe.subscriptions.retrieve(sub.id);
      expect(after).toMatchObject({ status: "active", latest_invoice: invoice.id });
      expect(after.items.data[0]?.current_period_start).toBe(end);
    }
  });

  it("bills usage × volume tiers: every unit at the tier the total falls in, plus its flat amount", async () => {
    const p = await plan("volume", [
      { up_to: 100, unit_amount: 10 },
      { up_to: 1000, unit_amount: 5, flat_amount: 200 },
      { up_to: "inf", unit_amount: 2 },
    ]);
    const cases: Array<[number, number]> = [
      [0, 0],
      [100, 1000],
      [101, 101 * 5 + 200],
      [1000, 1000 * 5 + 200],
      [1001, 1001 * 2],
    ];
    const subs = [];
    for (const [units] of cases) subs.push(await subscriber(p, units > 0 ? [units] : []));
    await advanceStandinTo(Math.max(...subs.map((s) => s.end)));
    for (const [i, [, usageAmount]] of cases.entries()) {
      const invoice = await onlyInvoice((subs[i] as (typeof subs)[number]).customer.id);
      expect(invoice.lines.data.map((l) => l.amount)).toEqual([5800, usageAmount]);
      expect(invoice.total).toBe(5800 + usageAmount);
    }
  });

  it("counts usage in [period start, period end) only, adds pending prorations, and numbers invoices per customer", async () => {
    const p = await plan("graduated", [
      { up_to: 10, unit_amount: 0 },
      { up_to: "inf", unit_amount: 3 },
    ]);
    const { customer, sub, end } = await subscriber(p, [20]);
    // An event before the subscription began is not billed.
    await stripe.billing.meterEvents.create({
      event_name: p.meter.event_name,
      payload: { stripe_customer_id: customer.id, value: "1000" },
      timestamp: sub.start_date - 60,
    });
    // A seat added mid-period leaves a pending proration the invoice takes in.
    const baseItem = sub.items.data[0] as Stripe.SubscriptionItem;
    await stripe.subscriptions.update(sub.id, { items: [{ id: baseItem.id, quantity: 3 }] });
    const pending = (await stripe.invoiceItems.list({ customer: customer.id })).data;
    expect(pending.length).toBeGreaterThan(0);
    const prorated = pending.reduce((sum, ii) => sum + ii.amount, 0);

    // Usage at the instant the period ends (sent just before it, as Stripe allows 5 minutes ahead)
    // belongs to the next one.
    await advanceStandinTo(end - 120);
    await stripe.billing.meterEvents.create({
      event_name: p.meter.event_name,
      payload: { stripe_customer_id: customer.id, value: "15" },
      timestamp: end,
    });
    await advanceStandinTo(end);
    const first = await onlyInvoice(customer.id);
    expect(first.lines.data.map((l) => l.amount)).toEqual([
      8700,
      30,
      ...pending.map((ii) => ii.amount).reverse(),
    ]);
    expect(first.total).toBe(8700 + 30 + prorated);
    const billed = await stripe.invoiceItems.list({ customer: customer.id });
    expect(billed.data.every((ii) => ii.invoice === first.id)).toBe(true);

    const next = (await stripe.subscriptions.retrieve(sub.id)).items.data[0]?.current_period_end ?? 0;
    await advanceStandinTo(next);
    const both = await stripe.invoices.list({ customer: customer.id });
    const second = both.data[0] as Stripe.Invoice;
    expect(second.lines.data.map((l) => l.amount)).toEqual([8700, 15]);
    expect(second.period_start).toBe(end);
    const prefix = (await stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    expect(both.data.map((i) => i.number)).toEqual([
      `${prefix.invoice_prefix}-0002`,
      `${prefix.invoice_prefix}-0001`,
    ]);
    // The hosted page and the printable copy are served by the stand-in.
    const page = await fetch(second.hosted_invoice_url as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`${prefix.invoice_prefix}-0002`);
    expect((await fetch(second.invoice_pdf as string)).status).toBe(200);
    const paid = await stripe.invoices.list({ customer: customer.id, status: "paid", limit: 1 });
    expect(paid.data.map((i) => i.id)).toEqual([second.id]);
    expect(paid.has_more).toBe(true);
  });

  it("records the cycle as events in order, each with the object as it was then", async () => {
    const p = await plan("graduated", [{ up_to: "inf", unit_amount: 1 }]);
    const marker = await newestEventId();
    const { customer, sub, end } = await subscriber(p, [7]);
    await advanceStandinTo(end);
    const invoice = await onlyInvoice(customer.id);
    const events = await eventsAbout([customer.id, sub.id, invoice.id], marker);
    expect(events.map((e) => e.type)).toEqual([
      "customer.created",
      "customer.subscription.created",
      "invoice.created",
      "customer.subscription.updated",
      "invoice.finalized",
      "invoice.paid",
      "invoice.payment_succeeded",
    ]);
    const [, , created, updated, finalized, paid] = events as Stripe.Event[];
    expect(created?.data.object).toMatchObject({
      id: invoice.id,
      status: "draft",
      number: null,
      total: 5807,
    });
    expect(finalized?.data.object).toMatchObject({ status: "open", number: invoice.number, amount_paid: 0 });
    expect(paid?.data.object).toMatchObject({ status: "paid", amount_paid: 5807 });
    expect(updated?.data.previous_attributes).toMatchObject({ latest_invoice: null });
    expect(updated?.data.object).toMatchObject({ latest_invoice: invoice.id });
    expect(created).toMatchObject({
      object: "event",
      livemode: false,
      pending_webhooks: 0,
      created: end,
      request: { id: null, idempotency_key: null },
    });
    expect(events[0]?.request?.id).toMatch(/^req_/);
  });
});

describe("Stripe stand-in: failed payments", () => {
  it("a declined charge makes the subscription past_due; retries every 3 days; the third failure cancels it", async () => {
    const p = await plan("graduated", [{ up_to: "inf", unit_amount: 1 }]);
    const { customer, sub, end } = await subscriber(p, [100]);
    await setPaymentOutcome(customer.id, "fail");
    const marker = await newestEventId();
    await advanceStandinTo(end);
    let invoice = await onlyInvoice(customer.id);
    expect(invoice).toMatchObject({
      status: "open",
      attempt_count: 1,
      amount_paid: 0,
      amount_remaining: 5900,
      next_payment_attempt: end + 3 * DAY,
    });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("past_due");

    await advanceStandinTo(end + 3 * DAY - 1);
    expect((await onlyInvoice(customer.id)).attempt_count).toBe(1);
    await advanceStandinTo(end + 3 * DAY);
    invoice = await onlyInvoice(customer.id);
    expect(invoice).toMatchObject({ attempt_count: 2, next_payment_attempt: end + 6 * DAY });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("past_due");
    await advanceStandinTo(end + 6 * DAY);
    invoice = await onlyInvoice(customer.id);
    expect(invoice).toMatchObject({ status: "open", attempt_count: 3, next_payment_attempt: null });
    const canceled = await stripe.subscriptions.retrieve(sub.id);
    expect(canceled).toMatchObject({
      status: "canceled",
      ended_at: end + 6 * DAY,
      cancellation_details: { reason: "payment_failed" },
    });
    await advanceStandinTo(end + 40 * DAY); // no more retries, no more periods
    expect((await stripe.invoices.list({ customer: customer.id })).data).toHaveLength(1);

    const events = await eventsAbout([sub.id, invoice.id], marker);
    expect(events.map((e) => e.type)).toEqual([
      "invoice.created",
      "customer.subscription.updated",
      "invoice.finalized",
      "invoice.payment_failed",
      "customer.subscription.updated",
      "invoice.payment_failed",
      "invoice.payment_failed",
      "customer.subscription.deleted",
    ]);
    expect(events[4]?.data.previous_attributes).toEqual({ status: "active" });
    expect(events[4]?.data.object).toMatchObject({ status: "past_due" });
    expect(events[3]?.data.object).toMatchObject({ attempt_count: 1 });
  });

  it("paying the open invoice later makes a past_due subscription active again; a declined /pay is a 402 card_error", async () => {
    const p = await plan("graduated", [{ up_to: "inf", unit_amount: 1 }]);
    const { customer, sub, end } = await subscriber(p, [10]);
    await setPaymentOutcome(customer.id, "fail");
    await advanceStandinTo(end);
    const invoice = await onlyInvoice(customer.id);

    const declined = await stripeError(stripe.invoices.pay(invoice.id));
    expect(declined).toMatchObject({ statusCode: 402, type: "StripeCardError", code: "card_declined" });
    expect((await stripe.invoices.retrieve(invoice.id)).attempt_count).toBe(2);

    await setPaymentOutcome(customer.id, "succeed");
    const marker = await newestEventId();
    const paid = await stripe.invoices.pay(invoice.id);
    expect(paid).toMatchObject({ status: "paid", amount_paid: 5810, amount_remaining: 0, attempt_count: 3 });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("active");
    const events = await eventsAbout([sub.id, invoice.id], marker);
    expect(events.map((e) => e.type)).toEqual([
      "invoice.paid",
      "invoice.payment_succeeded",
      "customer.subscription.updated",
    ]);
    expect(events[2]?.data.previous_attributes).toEqual({ status: "past_due" });
    expect(events[0]?.request?.id).toMatch(/^req_/);

    const again = await stripeError(stripe.invoices.pay(invoice.id));
    expect(again).toMatchObject({ statusCode: 400, type: "StripeInvalidRequestError" });
    const missing = await stripeError(stripe.invoices.retrieve("in_nothing"));
    expect(missing).toMatchObject({ statusCode: 404, code: "resource_missing" });
  });

  it("with retries ending in unpaid, the subscription stays unpaid, its next invoice a draft, until its latest invoice is paid", async () => {
    const rules = await standinControl("/_standin/billing/retries", { attempts: 2, exhausted: "unpaid" });
    expect(rules).toMatchObject({
      status: 200,
      body: { attempts: 2, interval_days: 3, exhausted: "unpaid" },
    });
    const p = await plan("graduated", [{ up_to: "inf", unit_amount: 1 }]);
    const { customer, sub, end } = await subscriber(p, []);
    await setPaymentOutcome(customer.id, "fail");
    await advanceStandinTo(end + 3 * DAY);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("unpaid");
    const next = (await stripe.subscriptions.retrieve(sub.id)).items.data[0]?.current_period_end ?? 0;
    await advanceStandinTo(next);
    const [draft, open] = (await stripe.invoices.list({ customer: customer.id })).data;
    expect(draft).toMatchObject({ status: "draft", number: null, attempt_count: 0 });
    expect(open).toMatchObject({ status: "open", attempt_count: 2, next_payment_attempt: null });

    await setPaymentOutcome(customer.id, "succeed");
    await stripe.invoices.pay(open?.id as string);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("unpaid"); // not its latest invoice
    const paidDraft = await stripe.invoices.pay(draft?.id as string);
    expect(paidDraft).toMatchObject({ status: "paid", amount_paid: 5800 });
    expect(paidDraft.number).toMatch(/-0002$/);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("active");
  });
});

describe("Stripe stand-in: control endpoints", () => {
  it("refuse bad input with 400 (404 for an unknown customer or path) and change nothing", async () => {
    const before = await standinNow();
    // Earlier tests moved the clock by weeks; before each test it is back to real time.
    expect(Math.abs(before - Date.now() / 1000)).toBeLessThan(60);
    const customer = await stripe.customers.create({ name: "ctl" });
    const bad: Array<[string, unknown, number]> = [
      ["/_standin/clock/advance", {}, 400],
      ["/_standin/clock/advance", { seconds: -1 }, 400],
      ["/_standin/clock/advance", { seconds: 1.5 }, 400],
      ["/_standin/clock/advance", { seconds: "60" }, 400],
      ["/_standin/clock/advance", { seconds: 60, to: before + 60 }, 400],
      ["/_standin/clock/advance", { to: before - 3600 }, 400],
      ["/_standin/clock/advance", [60], 400],
      ["/_standin/clock/advance", { seconds: 60, extra: 1 }, 400],
      [`/_standin/customers/${customer.id}/payment_outcome`, { outcome: "maybe" }, 400],
      ["/_standin/customers/cus_nothing/payment_outcome", { outcome: "fail" }, 404],
      ["/_standin/billing/retries", { attempts: 0 }, 400],
      ["/_standin/billing/retries", { exhausted: "deleted" }, 400],
      ["/_standin/nothing", {}, 404],
    ];
    for (const [path, body, status] of bad) {
      const answer = await standinControl(path, body);
      expect([path, answer.status]).toEqual([path, status]);
      expect(answer.body).toMatchObject({ error: { type: "invalid_request_error" } });
    }
    const notJson = await fetch(new URL("/_standin/clock/advance", STANDIN), { method: "POST", body: "{" });
    expect(notJson.status).toBe(400);
    expect((await standinNow()) - before).toBeLessThan(30); // not moved (only real time passed)

    const moved = await standinControl("/_standin/clock/advance", { seconds: 3600 });
    expect(moved.status).toBe(200);
    expect((moved.body.now as number) - before).toBeGreaterThanOrEqual(3600);
  });
});
