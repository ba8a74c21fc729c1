/**
 * What a tenant will pay, as pure functions: from the pricing its subscription bills by, the
 * period, and the billable units whose hour falls in the period so far, the statement the billing
 * views show — units, the amount so far (`periodAmount`: the same graduated tiers and integer
 * arithmetic as Stripe's invoice) and a forecast for the whole period.
 *
 * Forecast: the period's billable units so far, extrapolated linearly by elapsed time —
 * `used × periodLength / elapsed`, in BigInt, rounded to the nearest unit (halves up) — then priced
 * like the units so far. The elapsed time counts at least one hour, so the first minutes of a period
 * (a handful of requests, or none at all) neither divide by zero nor extrapolate to absurd numbers;
 * at or past the period's end the forecast is the units so far.
 */
import type { PlanPricing } from "../../schema";
import type { Period } from "./period";
import { type MeteredPricing, periodAmount } from "./pricing";

const HOUR_MS = 3_600_000;

/** Minor units of the statement's currency. */
export interface Amount {
  baseFee: number;
  usage: number;
  /** base fee + usage */
  total: number;
}

export interface Statement {
  /** Null on a free plan (it never bills). */
  currency: string | null;
  units: {
    /** Billable units whose hour falls in the period so far. */
    used: number;
    /** Units the base fee covers (metered plans; null otherwise). */
    included: number | null;
    includedRemaining: number | null;
    /** Units priced by the overage tiers (metered), spent from credits (prepaid), 0 (free). */
    billable: number;
  };
  /** So far; null on a prepaid plan (credits pay for units) or beyond exact integers (2^53 minor units). */
  amount: Amount | null;
  /** Units null (and amount null) when the extrapolation leaves exact integers (2^53). */
  forecast: { units: number | null; amount: Amount | null };
}

/** The period's units at its end, by linear extrapolation of `used` (see the header); null beyond 2^53. */
export function forecastUnits(used: number, period: Period, now: number): number | null {
  const length = period.end - period.start;
  const elapsed = Math.min(length, Math.max(HOUR_MS, now - period.start));
  if (elapsed >= length) return used;
  const [u, l, e] = [BigInt(used), BigInt(length), BigInt(elapsed)];
  const rounded = (2n * u * l + e) / (2n * e);
  return rounded > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(rounded);
}

/** `units` priced on a metered plan, or null when the units or the amount leave exact integers. */
function meteredAmount(p: MeteredPricing, units: number | null): Amount | null {
  if (units === null) return null;
  try {
    const a = periodAmount(p, units);
    return { baseFee: a.baseFee, usage: a.usageAmount, total: a.total };
  } catch (error) {
    if (error instanceof RangeError) return null;
    throw error;
  }
}

const ZERO: Amount = { baseFee: 0, usage: 0, total: 0 };

/** The statement of a period: `used` billable units so far, at `now`. */
export function statement(pricing: PlanPricing, period: Period, used: number, now: number): Statement {
  const forecast = forecastUnits(used, period, now);
  switch (pricing.model) {
    case "free":
      return {
        currency: null,
        units: { used, included: null, includedRemaining: null, billable: 0 },
        amount: ZERO,
        forecast: { units: forecast, amount: ZERO },
      };
    case "prepaid":
      return {
        currency: pricing.currency,
        units: { used, included: null, includedRemaining: null, billable: used },
        amount: null,
        forecast: { units: forecast, amount: null },
      };
    case "metered": {
      const included = pricing.includedUnits;
      return {
        currency: pricing.currency,
        units: {
          used,
          included,
          includedRemaining: Math.max(0, included - used),
          billable: Math.max(0, used - included),
        },
        amount: meteredAmount(pricing, used),
        forecast: { units: forecast, amount: meteredAmount(pricing, forecast) },
      };
    }
  }
}
