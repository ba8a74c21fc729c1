/**
 * The Stripe stand-in's products, prices, customers and subscriptions, driven through the real
 * `stripe` package inside workerd, as the gateway drives api.stripe.com. The stand-in is shared by
 * every test file: each test makes its own customers, products and lookup keys.
 */
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { stripeError } from "../support/stripe-error";
import { standinStripe } from "../support/stripe-standin";

const uniq = () => crypto.randomUUID().slice(0, 8);

const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

async function meter(): Promise<string> {
  const m = await stripe.billing.meters.create({
    display_name: "units",
    event_name: `units_${uniq()}`,
    default_aggregation: { formula: "sum" },
  });
  return m.id;
}

describe("Stripe stand-in: products and prices", () => {
  it("creates a graduated metered price on a meter, finds it by lookup key, and keeps lookup keys unique", async () => {
    const product = await stripe.products.create({ id: `gw_${uniq()}`, name: "Growth" });
    expect(product).toMatchObject({ object: "product", active: true, name: "Growth" });
    expect((await stripe.products.retrieve(product.id)).id).toBe(product.id);
    const lookup = `gw_${uniq()}_v1_usage`;
    const meterId = await meter();
    const price = await stripe.prices.create({
      product: product.id,
      currency: "usd",
      billing_scheme: "tiered",
      tiers_mode: "graduated",
      tiers: [
        { up_to: 1000, unit_amount: 0 },
        { up_to: 5000, unit_amount: 2, flat_amount: 100 },
        { up_to: "inf", unit_amount: 1 },
      ],
      recurring: { interval: "month", usage_type: "metered", meter: meterId },
      lookup_key: lookup,
    });
    expect(price).toMatchObject({
      object: "price",
      type: "recurring",
      billing_scheme: "tiered",
      tiers_mode: "graduated",
      unit_amount: null,
      lookup_key: lookup,
      recurring: { interval: "month", interval_count: 1, usage_type: "metered", meter: meterId },
    });
    expect(price.tiers).toBeUndefined(); // includable: only when expanded

    const found = await stripe.prices.list({ lookup_keys: [lookup, "gw_nothing"], expand: ["data.tiers"] });
    expect(found.object).toBe("list");
    expect(found.data.map((p) => p.id)).toEqual([price.id]);
    // The package turns the `*_decimal` strings into Decimal objects; compare them as strings.
    const tiers = (found.data[0]?.tiers ?? []).map((t) => ({
      ...t,
      unit_amount_decimal: t.unit_amount_decimal === null ? null : String(t.unit_amount_decimal),
      flat_amount_decimal: t.flat_amount_decimal === null ? null : String(t.flat_amount_decimal),
    }));
    expect(tiers).toEqual([
      { up_to: 1000, unit_amount: 0, unit_amount_decimal: "0", flat_amount: null, flat_amount_decimal: null },
      { up_to: 5000, unit_amount: 2, unit_amount_decimal: "2", flat_amount: 100, flat_amount_decimal: "100" },
      { up_to: null, unit_amount: 1, unit_amount_decimal: "1", flat_amount: null, flat_amount_decimal: null },
    ]);

    const taken = await stripeError(
      stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 5, lookup_key: lookup }),
    );
    expect(taken).toMatchObject({ statusCode: 400, type: "StripeInvalidRequestError", param: "lookup_key" });
    const noMeter = await stripeError(
      stripe.prices.create({
        product: product.id,
        currency: "usd",
        unit_amount: 1,
        recurring: { interval: "month", usage_type: "metered" },
      }),
    );
    expect(noMeter).toMatchObject({ code: "parameter_missing", param: "recurring[meter]" });
  });
});

describe("Stripe stand-in: subscriptions", () => {
  it("subscribes a customer to a base fee and a metered price, and prorates a mid-period price change", async () => {
    const product = await stripe.products.create({ name: `p-${uniq()}` });
    const base = await stripe.prices.create({
      product: product.id,
      currency: "usd",
      unit_amount: 3000,
      recurring: { interval: "month" },
    });
    const richer = await stripe.prices.create({
      product: product.id,
      currency: "usd",
      unit_amount: 9000,
      recurring: { interval: "month" },
    });
    const usage = await stripe.prices.create({
      product: product.id,
      currency: "usd",
      unit_amount: 2,
      recurring: { interval: "month", usage_type: "metered", meter: await meter() },
    });
    const customer = await stripe.customers.create({ name: "c" });
    const sub = await stripe.subscriptions.create(
      { customer: customer.id, items: [{ price: base.id }, { price: usage.id }] },
      { idempotencyKey: `sub-${uniq()}` },
    );
    expect(sub).toMatchObject({
      object: "subscription",
      status: "active",
      customer: customer.id,
      currency: "usd",
    });
    const [baseItem, usageItem] = sub.items.data;
    expect(baseItem).toMatchObject({ object: "subscription_item", quantity: 1, price: { id: base.id } });
    expect(usageItem?.quantity).toBeUndefined();
    const { current_period_start: start, current_period_end: end } = baseItem as Stripe.SubscriptionItem;
    expect(end).toBeGreaterThan(start + 27 * 86_400);

    const at = start + Math.floor((end - start) / 2);
    const moved = await stripe.subscriptions.update(sub.id, {
      items: [{ id: baseItem?.id, price: richer.id }],
      proration_behavior: "create_prorations",
      proration_date: at,
    });
    expect(moved.items.data.map((i) => i.price.id)).toEqual([richer.id, usage.id]);
    const remaining = (end - at) / (end - start);
    const prorations = await stripe.invoiceItems.list({ customer: customer.id });
    expect(prorations.data[0]?.parent).toEqual({
      type: "subscription_details",
      subscription_details: { subscription: sub.id, subscription_item: null },
    });
    expect(moved.items.data[0]?.plan).toMatchObject({ object: "plan", id: richer.id, amount: 9000 });
    expect(prorations.data.map((ii) => [ii.amount, ii.proration]).sort()).toEqual(
      [
        [-Math.round(3000 * remaining), true],
        [Math.round(9000 * remaining), true],
      ].sort(),
    );

    await stripe.subscriptions.update(sub.id, {
      items: [{ id: baseItem?.id, price: base.id }],
      proration_behavior: "none",
    });
    expect((await stripe.invoiceItems.list({ customer: customer.id })).data).toHaveLength(2);
    expect((await stripe.subscriptions.list({ customer: customer.id })).data.map((s) => s.id)).toEqual([
      sub.id,
    ]);

    const canceled = await stripe.subscriptions.cancel(sub.id);
    expect(canceled).toMatchObject({ status: "canceled" });
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toEqual([]);
    const gone = await stripeError(stripe.subscriptions.update(sub.id, { items: [{ price: base.id }] }));
    expect(gone.statusCode).toBe(400);
  });

  it("refuses a subscription for an unknown customer or a one-time price, in Stripe's error shape", async () => {
    const missingCustomer = await stripeError(
      stripe.subscriptions.create({ customer: "cus_nobody", items: [{ price: "price_x" }] }),
    );
    expect(missingCustomer).toMatchObject({ statusCode: 400, code: "resource_missing", param: "customer" });
    const product = await stripe.products.create({ name: `p-${uniq()}` });
    const pack = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 5000 });
    expect(pack).toMatchObject({ type: "one_time", recurring: null });
    const customer = await stripe.customers.create({ name: "c" });
    const oneTime = await stripeError(
      stripe.subscriptions.create({ customer: customer.id, items: [{ price: pack.id }] }),
    );
    expect(oneTime).toMatchObject({ statusCode: 400, param: "items[0][price]" });
  });
});
