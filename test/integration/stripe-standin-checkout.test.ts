/**
 * The Stripe stand-in's Checkout Sessions (payment mode), driven through the real `stripe` package
 * inside workerd, and its local pay page: pay → session complete + `checkout.session.completed`,
 * then the browser goes to success_url; completing without a browser; expiring; refusals.
 */
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { stripeError } from "../support/stripe-error";
import { standinStripe } from "../support/stripe-standin";
import { standinControl } from "../support/stripe-standin-control";

const uniq = () => crypto.randomUUID().slice(0, 8);
const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

async function creditPack(): Promise<Stripe.Price> {
  const product = await stripe.products.create({ name: `Credits ${uniq()}` });
  return stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 1000 });
}

/** The events of `type` about session `id`. */
async function sessionEvents(id: string, type: string): Promise<Stripe.Event[]> {
  const list = await stripe.events.list({ type, limit: 100 });
  return list.data.filter((e) => (e.data.object as Stripe.Checkout.Session).id === id);
}

describe("Stripe stand-in: Checkout Sessions", () => {
  it("pays on the local page: the session completes, the event is recorded, the browser goes to success_url", async () => {
    const price = await creditPack();
    const customer = await stripe.customers.create({ name: "buyer" });
    const hostile = `<script>alert("x")</script> & "Pro" pack`;
    const session = await stripe.checkout.sessions.create({
      mode: "payment",
      customer: customer.id,
      client_reference_id: "tenant_42",
      line_items: [
        { price: price.id, quantity: 3 },
        { price_data: { currency: "usd", unit_amount: 250, product_data: { name: hostile } }, quantity: 2 },
      ],
      success_url: "https://app.example/paid?session={CHECKOUT_SESSION_ID}",
      cancel_url: "https://app.example/cancel",
      metadata: { credits: "3500" },
      payment_intent_data: { metadata: { credits: "3500" } },
    });
    expect(session).toMatchObject({
      object: "checkout.session",
      mode: "payment",
      status: "open",
      payment_status: "unpaid",
      amount_total: 3500,
      currency: "usd",
      customer: customer.id,
      client_reference_id: "tenant_42",
      metadata: { credits: "3500" },
      payment_intent: null,
    });
    expect(session.line_items).toBeUndefined(); // includable: only when expanded

    const page = await fetch(session.url as string);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain("USD 35.00");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Pro&quot; pack");
    expect(html).not.toContain("<script>");

    const paid = await fetch(session.url as string, { method: "POST", redirect: "manual" });
    expect(paid.status).toBe(303);
    expect(paid.headers.get("location")).toBe(`https://app.example/paid?session=${session.id}`);

    const done = await stripe.checkout.sessions.retrieve(session.id, { expand: ["line_items"] });
    expect(done).toMatchObject({ status: "complete", payment_status: "paid", amount_total: 3500, url: null });
    expect(done.payment_intent).toMatch(/^pi_/);
    expect(done.line_items?.data.map((l) => [l.description, l.quantity, l.amount_total])).toEqual([
      [(await stripe.products.retrieve(price.product as string)).name, 3, 3000],
      [hostile, 2, 500],
    ]);
    const events = await sessionEvents(session.id, "checkout.session.completed");
    expect(events).toHaveLength(1);
    expect(events[0]?.data.object).toMatchObject({
      id: session.id,
      status: "complete",
      payment_status: "paid",
      amount_total: 3500,
      client_reference_id: "tenant_42",
      metadata: { credits: "3500" },
    });

    // Paying twice is refused and records nothing more.
    const again = await fetch(session.url as string, {
      method: "POST",
      redirect: "manual",
    });
    expect(again.status).toBe(409);
    expect(await sessionEvents(session.id, "checkout.session.completed")).toHaveLength(1);
  });

  it("completes without a browser through the control endpoint, once", async () => {
    const price = await creditPack();
    const session = await stripe.checkout.sessions.create({
      mode: "payment",
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: "https://app.example/ok",
    });
    const done = await standinControl(`/_standin/checkout/sessions/${session.id}/complete`);
    expect(done).toMatchObject({
      status: 200,
      body: { id: session.id, status: "complete", payment_status: "paid" },
    });
    expect(await sessionEvents(session.id, "checkout.session.completed")).toHaveLength(1);
    const twice = await standinControl(`/_standin/checkout/sessions/${session.id}/complete`);
    expect(twice.status).toBe(400);
    expect((await standinControl("/_standin/checkout/sessions/cs_test_nothing/complete")).status).toBe(404);
    expect(await sessionEvents(session.id, "checkout.session.completed")).toHaveLength(1);
  });

  it("expires an open session; an expired one can be neither paid nor expired again", async () => {
    const price = await creditPack();
    const session = await stripe.checkout.sessions.create({
      mode: "payment",
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: "https://app.example/ok",
    });
    const expired = await stripe.checkout.sessions.expire(session.id);
    expect(expired).toMatchObject({ status: "expired", payment_status: "unpaid", url: null });
    expect(await sessionEvents(session.id, "checkout.session.expired")).toHaveLength(1);
    const page = await fetch(session.url as string, { method: "POST", redirect: "manual" });
    expect(page.status).toBe(409);
    expect((await standinControl(`/_standin/checkout/sessions/${session.id}/complete`)).status).toBe(400);
    const twice = await stripeError(stripe.checkout.sessions.expire(session.id));
    expect(twice).toMatchObject({ statusCode: 400, type: "StripeInvalidRequestError" });
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe("expired");
  });

  it("refuses bad sessions with Stripe's 400s and creates nothing", async () => {
    const price = await creditPack();
    const recurring = await stripe.prices.create({
      product: price.product as string,
      currency: "usd",
      unit_amount: 500,
      recurring: { interval: "month" },
    });
    const ok = { price: price.id, quantity: 1 };
    const bad: Array<[Stripe.Checkout.SessionCreateParams, string]> = [
      [{ mode: "payment" }, "line_items"],
      [{ mode: "subscription", line_items: [{ price: recurring.id, quantity: 1 }] }, "mode"],
      [{ mode: "payment", line_items: [{ price: recurring.id, quantity: 1 }] }, "line_items[0][price]"],
      [{ mode: "payment", line_items: [{ price: price.id, quantity: 0 }] }, "line_items[0][quantity]"],
      [{ mode: "payment", line_items: [{ price: price.id }] }, "line_items[0][quantity]"],
      [{ mode: "payment", line_items: [{ price: "price_nothing", quantity: 1 }] }, "line_items[0][price]"],
      [{ mode: "payment", line_items: [ok], customer: "cus_nothing" }, "customer"],
      [
        { mode: "payment", line_items: [{ price_data: { currency: "usd", unit_amount: 5 }, quantity: 1 }] },
        "line_items[0][price_data][product]",
      ],
      [
        {
          mode: "payment",
          line_items: [
            ok,
            { price_data: { currency: "eur", unit_amount: 5, product_data: { name: "x" } }, quantity: 1 },
          ],
        },
        "line_items",
      ],
      [
        { mode: "payment", line_items: [ok], shipping: 1 } as unknown as Stripe.Checkout.SessionCreateParams,
        "shipping",
      ],
    ];
    const before = (await stripe.events.list({ limit: 1 })).data[0]?.id;
    for (const [params, param] of bad) {
      const err = await stripeError(stripe.checkout.sessions.create(params));
      expect([err.statusCode, err.type, err.param]).toEqual([400, "StripeInvalidRequestError", param]);
    }
    expect((await stripe.events.list({ limit: 1 })).data[0]?.id).toBe(before);
    const missing = await stripeError(stripe.checkout.sessions.retrieve("cs_test_nothing"));
    expect(missing).toMatchObject({ statusCode: 404, code: "resource_missing" });
  });
});
