/**
 * The Stripe side of a plan, made idempotently: one Product per plan (custom id `gw_<planId>`) and,
 * per pricing version, the Prices that bill it, each with the lookup key
 * `gw_<planId>_v<version>_base|_usage|_pack`:
 * - metered: a licensed monthly base-fee Price (when `baseFee` > 0) and a metered graduated tiered
 *   usage Price on the gateway's billing meter (`stripeTiers()`: included units first, at 0);
 * - prepaid: a one-time Price for the credit pack (checkout, later);
 * - free: nothing.
 * Prices are found by lookup key before any is created, and created with idempotency keys made of
 * the plan id and version (never reused), so any number of retries leaves one set.
 */
import type Stripe from "stripe";
import { ensureMeter } from "../shared/stripe";
import { type PlanPricing, stripeTiers } from "./pricing";

export interface PlanPrices {
  productId: string | null;
  /** Licensed monthly base fee (metered plans with a base fee). */
  base: string | null;
  /** Metered graduated usage price (metered plans). */
  usage: string | null;
  /** One-time credit pack (prepaid plans). */
  pack: string | null;
}

export const lookupKey = (planId: string, version: number, part: "base" | "usage" | "pack") =>
  `gw_${planId}_v${version}_${part}`;

/** The plan's Product, created the first time (its id is derived from the plan id). */
async function ensureProduct(stripe: Stripe, planId: string, name: string): Promise<string> {
  const id = `gw_${planId}`;
  try {
    return (await stripe.products.retrieve(id)).id;
  } catch (error) {
    if ((error as { code?: string }).code !== "resource_missing") throw error;
  }
  const product = await stripe.products.create(
    { id, name, metadata: { gateway_plan_id: planId } },
    { idempotencyKey: `product-${planId}` },
  );
  return product.id;
}

/** The Stripe prices of one pricing version of a plan, made if missing. */
export async function ensurePlanPrices(
  stripe: Stripe,
  meterEventName: string,
  plan: { id: string; name: string },
  version: number,
  pricing: PlanPricing,
): Promise<PlanPrices> {
  const none: PlanPrices = { productId: null, base: null, usage: null, pack: null };
  if (pricing.model === "free") return none;
  const parts: Array<"base" | "usage" | "pack"> =
    pricing.model === "prepaid" ? ["pack"] : pricing.baseFee > 0 ? ["base", "usage"] : ["usage"];
  const keys = parts.map((part) => lookupKey(plan.id, version, part));
  const existing = await stripe.prices.list({ lookup_keys: keys, limit: 10 });
  const found = new Map(existing.data.map((p) => [p.lookup_key, p.id]));
  const productId = await ensureProduct(stripe, plan.id, plan.name);
  const prices: PlanPrices = { ...none, productId };
  for (const part of parts) {
    const key = lookupKey(plan.id, version, part);
    const known = found.get(key);
    if (known) {
      prices[part] = known;
      continue;
    }
    const common = {
      product: productId,
      currency: pricing.currency,
      lookup_key: key,
      metadata: { gateway_plan_id: plan.id, gateway_pricing_version: String(version) },
    };
    let params: Stripe.PriceCreateParams;
    if (pricing.model === "prepaid") {
      params = { ...common, unit_amount: pricing.creditPack.amount, nickname: `${plan.name} credit pack` };
    } else if (part === "base") {
      params = {
        ...common,
        unit_amount: pricing.baseFee,
        recurring: { interval: "month", usage_type: "licensed" },
        nickname: `${plan.name} base fee`,
      };
    } else {
      params = {
        ...common,
        billing_scheme: "tiered",
        tiers_mode: "graduated",
        tiers: stripeTiers(pricing),
        recurring: {
          interval: "month",
          usage_type: "metered",
          meter: await ensureMeter(stripe, meterEventName),
        },
        nickname: `${plan.name} usage`,
      };
    }
    const price = await stripe.prices.create(params, { idempotencyKey: `price-${key}` });
    prices[part] = price.id;
  }
  return prices;
}
