/**
 * How the Stripe stand-in turns usage into money: a meter's aggregation of its events
 * (dev/stripe-standin.ts), and a price's amount for a quantity.
 */
import type { AcceptedMeterEvent, Formula, PriceTier } from "./objects";

export function aggregate(formula: Formula, events: AcceptedMeterEvent[]): number {
  if (formula === "count") return events.length;
  if (formula === "last") {
    // Choice: "last" = the value of the event with the latest timestamp (ties: the last received).
    let latest: AcceptedMeterEvent | undefined;
    for (const e of events) if (!latest || e.timestamp >= latest.timestamp) latest = e;
    return latest?.value ?? 0;
  }
  // Rounded to 15 significant digits so that decimal values sum as decimals (0.1 + 0.2 = 0.3).
  const total = events.reduce((sum, e) => sum + e.value, 0);
  return Number(total.toPrecision(15));
}

/**
 * A price's amount, in minor units, for `quantity` units (api/prices, "tiers"):
 * - per_unit: `unit_amount × quantity`;
 * - tiered, graduated: each tier bills the units that fall in it (`up_to` inclusive) at its
 *   `unit_amount`, plus its `flat_amount` once when the quantity reaches it. Choice (the docs do
 *   not say; billing engines that mirror Stripe do the same, e.g. openmeterio/openmeter PR #2119):
 *   the first tier always applies, so its flat amount is billed even at zero units;
 * - tiered, volume: every unit at the `unit_amount` of the tier the whole quantity falls in, plus
 *   that tier's `flat_amount`.
 * Choice: a fractional quantity (a meter summing decimals) is priced exactly and the line rounded
 * half up to the minor unit, once.
 */
export function priceAmount(price: TieredPrice, quantity: number): number {
  let exact: number;
  if (price.billing_scheme !== "tiered" || !price.tiers) exact = (price.unit_amount ?? 0) * quantity;
  else if (price.tiers_mode === "volume") exact = volumeAmount(price.tiers, quantity);
  else exact = graduatedAmount(price.tiers, quantity);
  return Math.round(Number(exact.toPrecision(15)));
}

/** The fields of a price that decide its amount. */
export interface TieredPrice {
  billing_scheme: "per_unit" | "tiered";
  unit_amount: number | null;
  tiers_mode: "graduated" | "volume" | null;
  tiers?: PriceTier[];
}

function graduatedAmount(tiers: PriceTier[], quantity: number): number {
  let total = 0;
  let lower = 0;
  for (const [i, tier] of tiers.entries()) {
    if (i > 0 && quantity <= lower) break;
    const upper = tier.up_to ?? Number.POSITIVE_INFINITY;
    const units = Math.max(0, Math.min(quantity, upper) - lower);
    total += units * (tier.unit_amount ?? 0) + (tier.flat_amount ?? 0);
    lower = upper;
  }
  return total;
}

function volumeAmount(tiers: PriceTier[], quantity: number): number {
  const tier = tiers.find((t) => t.up_to === null || quantity <= t.up_to) ?? tiers[tiers.length - 1];
  return quantity * (tier?.unit_amount ?? 0) + (tier?.flat_amount ?? 0);
}
