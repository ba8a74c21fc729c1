/**
 * Stripe contract check of the gateway's money calls (node:test, run by `npm run test:contract`):
 * made against the local stand-in, each request and answer checked against Stripe's spec
 * (contract-session.ts):
 * - the credit top-up, workers/billing/credits/checkout.ts `createCreditCheckout`: it needs Postgres
 *   around it, so the same `checkout.sessions.create` call is made here with the same parameters
 *   and idempotency key form; then the session read back (the webhook receiver's
 *   `currentCheckoutSession`, workers/billing/webhooks/stripe-reads.ts) and expired;
 * - the webhook receiver's reads of a real stand-in invoice (`currentInvoice`, `currentSubscription`):
 *   a metered subscription, meter events, the stand-in's clock past the period end; the invoice
 *   listed and paid, and a payment that fails (402 card_error);
 * - dev/stripe-listen.ts's reads of the events those made (list newest first, retrieve one).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type Stripe from "stripe";
import type { PlanPricing } from "../../workers/billing/pricing";
import { ensurePlanPrices } from "../../workers/billing/stripe-catalog";
import {
  currentCheckoutSession,
  currentInvoice,
  currentSubscription,
} from "../../workers/billing/webhooks/stripe-reads";
import { createCustomer } from "../../workers/shared/stripe";
import { stripeError } from "../support/stripe-error";
import { type ContractSession, startContractSession } from "./contract-session";
import type { Exchange } from "./stripe-openapi";

const uniq = () => crypto.randomUUID().slice(0, 8);

let session: ContractSession;
let client: Stripe;

before(async () => {
  session = await startContractSession();
  client = session.client;
});

after(() => session.stop());

/** POSTs JSON to one of the stand-in's control endpoints (dev/stripe/control.ts); not a Stripe call. */
async function control(path: string, body: unknown): Promise<void> {
  const res = await fetch(new URL(path, session.standIn.url), { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200, `${path}: ${await res.text()}`);
}

/** The answer body of a recorded exchange (the one checked against the spec). */
function answer<T>(exchange: Exchange | undefined): T {
  assert.ok(exchange, "the call was made");
  return exchange.responseBody as T;
}

const prepaid: PlanPricing = {
  model: "prepaid",
  currency: "usd",
  creditPack: { units: 10_000, amount: 2_500 },
};

const metered: PlanPricing = {
  model: "metered",
  currency: "usd",
  baseFee: 2_900,
  includedUnits: 10,
  tiers: [{ upTo: null, unitAmount: 3, flatAmount: 0 }],
};

const tenantCustomer = (slug: string) =>
  createCustomer(client, { id: `ten_${uniq()}`, slug: `${slug}-${uniq()}`, name: slug });

/**
 * A customer billed once: a metered subscription, 25 units of usage, then the stand-in's clock past
 * the period end, which closes the period into an invoice and charges it (or fails to, per `outcome`).
 */
async function billedCustomer(outcome: "succeed" | "fail") {
  const eventName = `contract_${uniq()}`;
  const plan = { id: `pln_${uniq()}`, name: "Contract money" };
  const prices = await ensurePlanPrices(client, eventName, plan, 1, metered);
  const customer = await tenantCustomer("billed");
  if (outcome === "fail") await control(`/_standin/customers/${customer}/payment_outcome`, { outcome });
  const subscription = await client.subscriptions.create({
    customer,
    items: [{ price: prices.base ?? "" }, { price: prices.usage ?? "" }],
  });
  await client.billing.meterEvents.create({
    event_name: eventName,
    identifier: `row_${uniq()}`,
    payload: { stripe_customer_id: customer, value: "25" },
  });
  const periodEnd = subscription.items.data[0]?.current_period_end ?? 0;
  await control("/_standin/clock/advance", { to: periodEnd + 60 });
  return { customer, subscription: subscription.id };
}

describe("Stripe contract: money calls", () => {
  it("the credit top-up: checkout session create (as createCreditCheckout), retrieve, expire", async () => {
    const plan = { id: `pln_${uniq()}`, name: "Contract credits" };
    const prices = await ensurePlanPrices(client, `contract_${uniq()}`, plan, 1, prepaid);
    const customer = await tenantCustomer("credits");
    const tenantId = `ten_${uniq()}`;
    let created: Stripe.Checkout.Session | undefined;
    const [create] = await session.conforming(["POST /v1/checkout/sessions 200"], async () => {
      created = await client.checkout.sessions.create(
        {
          mode: "payment",
          customer,
          line_items: [{ price: prices.pack ?? "", quantity: 3 }],
          client_reference_id: tenantId,
          metadata: { tenant_id: tenantId, units: "30000", plan_id: plan.id, pricing_version: "1" },
          success_url: "https://tenant.example/credits?session={CHECKOUT_SESSION_ID}",
          cancel_url: "https://tenant.example/credits",
        },
        { idempotencyKey: `credits-checkout-${uniq()}` },
      );
    });
    assert.match(create?.requestBody ?? "", /line_items\[0\]\[quantity\]=3/); // what was checked
    assert.equal(created?.amount_total, 7_500);
    const id = created?.id ?? "";
    const [read] = await session.conforming(["GET /v1/checkout/sessions/{session} 200"], () =>
      currentCheckoutSession(client, id),
    );
    assert.equal(answer<{ status?: string }>(read).status, "open");
    const [expired] = await session.conforming(["POST /v1/checkout/sessions/{session}/expire 200"], () =>
      client.checkout.sessions.expire(id),
    );
    assert.equal(answer<{ status?: string }>(expired).status, "expired");
  });

  it("the webhook receiver's reads of a real invoice and its subscription; the invoices listed", async () => {
    const { customer, subscription } = await billedCustomer("succeed");
    const [listed] = await session.conforming(["GET /v1/invoices 200"], () =>
      client.invoices.list({ customer, limit: 10 }),
    );
    const invoices = answer<{ data: Stripe.Invoice[] }>(listed).data;
    assert.equal(invoices.length, 1);
    const invoice = invoices[0] as Stripe.Invoice;
    assert.equal(invoice.status, "paid");
    assert.equal(invoice.amount_paid, 2_900 + 15 * 3); // base fee + (25 − 10 included) × 3
    assert.ok(invoice.lines.data.length > 0, "the invoice's lines are in the answer that was checked");
    await session.conforming(
      ["GET /v1/invoices/{invoice} 200", "GET /v1/subscriptions/{subscription_exposed_id} 200"],
      async () => {
        await currentInvoice(client, invoice.id ?? "");
        await currentSubscription(client, subscription);
      },
    );
  });

  it("a failed payment: the open invoice, then paying it answers 402 card_error; paid once it succeeds", async () => {
    const { customer } = await billedCustomer("fail");
    const [listed] = await session.conforming(["GET /v1/invoices 200"], () =>
      client.invoices.list({ customer, status: "open" }),
    );
    const invoice = answer<{ data: Stripe.Invoice[] }>(listed).data[0];
    assert.equal(invoice?.status, "open");
    const id = invoice?.id ?? "";
    const [refused] = await session.conforming(["POST /v1/invoices/{invoice}/pay 402"], async () => {
      const error = await stripeError(client.invoices.pay(id));
      assert.equal(error.type, "StripeCardError");
    });
    assert.equal(answer<{ error: { type: string } }>(refused).error.type, "card_error");
    await control(`/_standin/customers/${customer}/payment_outcome`, { outcome: "succeed" });
    const [paid] = await session.conforming(["POST /v1/invoices/{invoice}/pay 200"], () =>
      client.invoices.pay(id),
    );
    assert.equal(answer<Stripe.Invoice>(paid).status, "paid");
  });

  it("the events the forwarder reads (dev/stripe-listen.ts): listed newest first, one retrieved", async () => {
    await billedCustomer("succeed");
    const [listed] = await session.conforming(["GET /v1/events 200"], () =>
      client.events.list({ limit: 100 }),
    );
    const events = answer<{ data: Stripe.Event[] }>(listed).data;
    const types = new Set(events.map((e) => e.type));
    for (const type of [
      "invoice.created",
      "invoice.finalized",
      "invoice.paid",
      "customer.subscription.created",
    ])
      assert.ok(types.has(type as Stripe.Event.Type), `${type} among ${[...types].join(", ")}`);
    const created = events.map((e) => e.created);
    assert.deepEqual(
      created,
      [...created].sort((a, b) => b - a),
    );
    const first = events[0] as Stripe.Event;
    await session.conforming(["GET /v1/events/{id} 200", "GET /v1/events 200"], async () => {
      await client.events.retrieve(first.id);
      await client.events.list({ ending_before: events[1]?.id ?? "", limit: 100 });
    });
  });
});
