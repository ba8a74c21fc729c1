/**
 * Stripe contract check of the gateway's billing calls (node:test, run by `npm run test:contract`):
 * the plan catalog and the subscriptions, made through the gateway's own code against the local
 * stand-in, each request and answer checked against Stripe's spec (contract-session.ts):
 * - workers/billing/stripe-catalog.ts `ensurePlanPrices`: prices by lookup key, the product
 *   (retrieve, 404 → create), a licensed base-fee price, a metered graduated tiered usage price on the
 *   billing meter, a one-time credit-pack price; a second run finds them all by lookup key;
 * - workers/billing/subscription-sync.ts `converge`: list the customer's subscriptions, create one,
 *   change its items with proration (retrieve, update), cancel it (retrieve, delete);
 * - the errors these calls meet: a missing subscription, a refused parameter, 429 and 500.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type Stripe from "stripe";
import type { BillingSyncRow, Tenant } from "../../schema";
import type { PlanPricing } from "../../workers/billing/pricing";
import { ensurePlanPrices } from "../../workers/billing/stripe-catalog";
import { converge } from "../../workers/billing/subscription-sync";
import { createCustomer } from "../../workers/shared/stripe";
import { stripeError } from "../support/stripe-error";
import { type ContractSession, startContractSession } from "./contract-session";

const uniq = () => crypto.randomUUID().slice(0, 8);

let session: ContractSession;
let client: Stripe;

before(async () => {
  session = await startContractSession();
  client = session.client;
});

after(() => session.stop());

const metered: PlanPricing = {
  model: "metered",
  currency: "usd",
  baseFee: 4_900,
  includedUnits: 1_000,
  tiers: [
    { upTo: 10_000, unitAmount: 2, flatAmount: 0 },
    { upTo: null, unitAmount: 1, flatAmount: 500 },
  ],
};

/** A plan's prices, as the billing sync makes them (a fresh plan and meter each time). */
async function planPrices(pricing: PlanPricing, plan = { id: `pln_${uniq()}`, name: "Contract" }) {
  return { plan, prices: await ensurePlanPrices(client, `contract_${uniq()}`, plan, 1, pricing) };
}

/** What `converge` reads of a tenant and of its billing-sync row. */
const tenantOf = (subscription: string | null) =>
  ({ id: `ten_${uniq()}`, stripeSubscriptionId: subscription }) as Tenant;
const rowOf = (prorate: boolean) => ({ id: `bsync_${uniq()}`, prorate }) as BillingSyncRow;

describe("Stripe contract: billing calls", () => {
  it("the plan catalog (ensurePlanPrices): product, base and tiered usage prices on the meter; found again by lookup key", async () => {
    const plan = { id: `pln_${uniq()}`, name: "Contract metered" };
    const made = await session.conforming(
      [
        "GET /v1/prices 200",
        "GET /v1/products/{id} 404",
        "POST /v1/products 200",
        "POST /v1/prices 200",
        "GET /v1/billing/meters 200",
        "POST /v1/billing/meters 200",
        "POST /v1/prices 200",
      ],
      () => planPrices(metered, plan),
    );
    // What was checked: lookup keys on the list, the tiers and meter on the usage price.
    assert.match(made[0]?.url ?? "", /lookup_keys\[0\]=gw_pln_/);
    assert.match(made[6]?.requestBody ?? "", /tiers\[\d\]\[up_to\]=inf/);
    assert.match(made[6]?.requestBody ?? "", /recurring\[meter\]=mtr_/);
    await session.conforming(["GET /v1/prices 200", "GET /v1/products/{id} 200"], () =>
      ensurePlanPrices(client, `contract_${uniq()}`, plan, 1, metered),
    );
  });

  it("a prepaid plan's one-time credit-pack price", async () => {
    await session.conforming(
      ["GET /v1/prices 200", "GET /v1/products/{id} 404", "POST /v1/products 200", "POST /v1/prices 200"],
      () => planPrices({ model: "prepaid", currency: "eur", creditPack: { units: 10_000, amount: 2_500 } }),
    );
  });

  it("subscriptions (converge): create, change items with proration, cancel", async () => {
    const { prices } = await planPrices(metered);
    const base = prices.base ?? "";
    const usage = prices.usage ?? "";
    const customer = await createCustomer(client, {
      id: `ten_${uniq()}`,
      slug: "contract",
      name: "Contract",
    });
    const tenant = tenantOf(null);
    let subscription: Stripe.Subscription | null = null;
    await session.conforming(["GET /v1/subscriptions 200", "POST /v1/subscriptions 200"], async () => {
      subscription = await converge(client, tenant, customer, [base, usage], rowOf(true));
    });
    const id = (subscription as Stripe.Subscription | null)?.id ?? "";
    const [, updated] = await session.conforming(
      [
        "GET /v1/subscriptions/{subscription_exposed_id} 200",
        "POST /v1/subscriptions/{subscription_exposed_id} 200",
      ],
      () => converge(client, tenantOf(id), customer, [usage], rowOf(true)),
    );
    assert.match(updated?.requestBody ?? "", /proration_behavior=create_prorations/);
    assert.match(updated?.requestBody ?? "", /items\[0\]\[deleted\]=true/);
    await session.conforming(
      [
        "GET /v1/subscriptions/{subscription_exposed_id} 200",
        "DELETE /v1/subscriptions/{subscription_exposed_id} 200",
      ],
      () => converge(client, tenantOf(id), customer, [], rowOf(false)),
    );
  });

  it("the errors: a missing subscription, a refused parameter, 429, 500", async () => {
    const customer = await createCustomer(client, { id: `ten_${uniq()}`, slug: "errors", name: "Errors" });
    await session.conforming(
      [
        "GET /v1/subscriptions/{subscription_exposed_id} 404",
        "POST /v1/prices 400",
        "GET /v1/prices 429",
        "POST /v1/subscriptions 500",
      ],
      async () => {
        await stripeError(client.subscriptions.retrieve("sub_nobody"));
        await stripeError(
          client.prices.create({
            currency: "usd",
            unit_amount: 1,
            product: "prod_x",
            bogus: 1,
          } as Stripe.PriceCreateParams),
        );
        session.standIn.failNext(1, 429);
        await stripeError(client.prices.list({ lookup_keys: ["gw_x_v1_base"] }));
        session.standIn.failNext(1, 500);
        await stripeError(client.subscriptions.create({ customer, items: [{ price: "price_x" }] }));
      },
      { badRequests: [1] }, // `bogus` is sent on purpose, to see the parameter_unknown answer
    );
  });
});
