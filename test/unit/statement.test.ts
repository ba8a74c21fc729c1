import { describe, expect, it } from "vitest";
import type { PlanPricing } from "../../schema";
import type { Period } from "../../workers/billing/period";
import { forecastUnits, statement } from "../../workers/billing/statement";

const HOUR = 3_600_000;
const start = Date.parse("2027-03-10T08:30:00Z");
/** A 30-day period (720 hours). */
const period: Period = { start, end: start + 720 * HOUR };

/** 29.00 a month, 1,000 units included, then 3 per unit up to 10,000, then 1 per unit plus 7.00 once. */
const metered: PlanPricing = {
  model: "metered",
  currency: "usd",
  baseFee: 2900,
  includedUnits: 1000,
  tiers: [
    { upTo: 9000, unitAmount: 3, flatAmount: 0 },
    { upTo: null, unitAmount: 1, flatAmount: 700 },
  ],
};

const at = (hours: number) => start + hours * HOUR;

describe("billing statement", () => {
  it("prices the units so far by the graduated tiers, at and around each boundary", () => {
    const amountAt = (used: number) => statement(metered, period, used, at(100)).amount;
    expect(amountAt(0)).toEqual({ baseFee: 2900, usage: 0, total: 2900 });
    expect(amountAt(999)).toEqual({ baseFee: 2900, usage: 0, total: 2900 });
    expect(amountAt(1000)).toEqual({ baseFee: 2900, usage: 0, total: 2900 });
    expect(amountAt(1001)).toEqual({ baseFee: 2900, usage: 3, total: 2903 });
    expect(amountAt(10_000)).toEqual({ baseFee: 2900, usage: 27_000, total: 29_900 });
    // The last tier's flat amount is charged once, with its first unit.
    expect(amountAt(10_001)).toEqual({ baseFee: 2900, usage: 27_701, total: 30_601 });
    expect(amountAt(10_002)).toEqual({ baseFee: 2900, usage: 27_702, total: 30_602 });
  });

  it("counts the included units down to exactly zero, then bills the rest", () => {
    const units = (used: number) => statement(metered, period, used, at(100)).units;
    expect(units(0)).toEqual({ used: 0, included: 1000, includedRemaining: 1000, billable: 0 });
    expect(units(1000)).toEqual({ used: 1000, included: 1000, includedRemaining: 0, billable: 0 });
    expect(units(1234)).toEqual({ used: 1234, included: 1000, includedRemaining: 0, billable: 234 });
  });

  it("with no usage, forecasts none and charges the base fee only", () => {
    const s = statement(metered, period, 0, at(360));
    expect(s.currency).toBe("usd");
    expect(s.forecast).toEqual({ units: 0, amount: { baseFee: 2900, usage: 0, total: 2900 } });
  });

  it("extrapolates linearly by elapsed time, rounding to the nearest unit, halves up", () => {
    expect(forecastUnits(5000, period, at(360))).toBe(10_000);
    // 1 unit in 2 of 3 hours → 1.5 → 2; 1 unit in 2.5 of 3 hours → 1.2 → 1.
    const short: Period = { start, end: at(3) };
    expect(forecastUnits(1, short, at(2))).toBe(2);
    expect(forecastUnits(1, short, at(2.5))).toBe(1);
    const s = statement(metered, period, 4000, at(240));
    expect(s.forecast).toEqual({ units: 12_000, amount: { baseFee: 2900, usage: 29_700, total: 32_600 } });
  });

  it("at the period's start neither divides by zero nor explodes: elapsed counts at least an hour", () => {
    expect(forecastUnits(0, period, start)).toBe(0);
    expect(forecastUnits(3, period, start)).toBe(3 * 720);
    expect(forecastUnits(3, period, start + 1)).toBe(3 * 720);
    expect(forecastUnits(3, period, at(1))).toBe(3 * 720);
    // A clock a little behind the period's start (another isolate) is the start.
    expect(forecastUnits(3, period, start - 5000)).toBe(3 * 720);
  });

  it("near and past the end, the forecast is the units so far", () => {
    expect(forecastUnits(1000, period, period.end - 1)).toBe(1000);
    expect(forecastUnits(1000, period, period.end - HOUR)).toBe(1001);
    expect(forecastUnits(1000, period, period.end)).toBe(1000);
    expect(forecastUnits(1000, period, period.end + 86_400_000)).toBe(1000);
  });

  it("keeps big numbers exact: BigInt where a float would drift, null where even that cannot be shown", () => {
    // A float gives 13222404592772 here; the exact quotient is …771.48.
    expect(forecastUnits(4_798_355_181_379, period, start + 940_625_931)).toBe(13_222_404_592_771);
    const oneCent: PlanPricing = {
      model: "metered",
      currency: "usd",
      baseFee: 0,
      includedUnits: 0,
      tiers: [{ upTo: null, unitAmount: 1, flatAmount: 0 }],
    };
    const max = Number.MAX_SAFE_INTEGER;
    expect(statement(oneCent, period, max, period.end).amount).toEqual({
      baseFee: 0,
      usage: max,
      total: max,
    });
    // 720 times 2^53-1 units is no exact JSON number: no forecast rather than a rounded one.
    expect(statement(oneCent, period, max, at(1)).forecast).toEqual({ units: null, amount: null });
    expect(forecastUnits(max, period, period.end)).toBe(max);
    const dear: PlanPricing = {
      ...oneCent,
      tiers: [{ upTo: null, unitAmount: 10_000_000_000, flatAmount: 0 }],
    };
    expect(statement(dear, period, 1_000_000_000_000, at(100)).amount).toBeNull();
  });

  it("a free plan shows units and zero amounts; a prepaid plan shows units and no amount", () => {
    const free = statement({ model: "free" }, period, 42, at(360));
    expect(free).toEqual({
      currency: null,
      units: { used: 42, included: null, includedRemaining: null, billable: 0 },
      amount: { baseFee: 0, usage: 0, total: 0 },
      forecast: { units: 84, amount: { baseFee: 0, usage: 0, total: 0 } },
    });
    const prepaid = statement(
      { model: "prepaid", currency: "eur", creditPack: { units: 1000, amount: 500 } },
      period,
      42,
      at(360),
    );
    expect(prepaid).toEqual({
      currency: "eur",
      units: { used: 42, included: null, includedRemaining: null, billable: 42 },
      amount: null,
      forecast: { units: 84, amount: null },
    });
  });
});
