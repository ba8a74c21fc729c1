import type { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import {
  type MeteredPricing,
  PlanPricingInput,
  periodAmount,
  stripeTiers,
} from "../../workers/billing/pricing";

type MeteredInput = Extract<z.input<typeof PlanPricingInput>, { model: "metered" }>;
const metered = (p: Omit<MeteredInput, "model" | "currency">): MeteredPricing =>
  PlanPricingInput.parse({ model: "metered", currency: "usd", ...p }) as MeteredPricing;

describe("plan pricing", () => {
  it("prices included units at 0 and the overage per unit, plus the base fee", () => {
    const p = metered({ baseFee: 4900, includedUnits: 1000, tiers: [{ upTo: null, unitAmount: 2 }] });
    expect(periodAmount(p, 0).total).toBe(4900);
    expect(periodAmount(p, 1000).total).toBe(4900);
    expect(periodAmount(p, 1001).total).toBe(4902);
    expect(periodAmount(p, 1500).total).toBe(5900);
  });

  it("prices graduated tiers unit by unit and charges a tier's flat amount once any unit reaches it", () => {
    const p = metered({
      tiers: [
        { upTo: 1000, unitAmount: 3 },
        { upTo: 10_000, unitAmount: 2, flatAmount: 500 },
        { upTo: null, unitAmount: 1 },
      ],
    });
    // Worked by hand: 1,000 × 3; then 9,000 × 2 + 500; then 2,000 × 1.
    expect(periodAmount(p, 12_000).usageLines.map((l) => [l.units, l.amount])).toEqual([
      [1000, 3000],
      [9000, 18_500],
      [2000, 2000],
    ]);
    expect(periodAmount(p, 12_000).total).toBe(23_500);
    expect(periodAmount(p, 1000).total).toBe(3000);
    expect(periodAmount(p, 1001).total).toBe(3502);
    expect(periodAmount(p, 0).total).toBe(0);
  });

  it("charges the first tier's flat amount even at zero units (as Stripe and the stand-in bill it), a later tier's only once reached", () => {
    const p = metered({
      tiers: [
        { upTo: 10, unitAmount: 1, flatAmount: 300 },
        { upTo: null, unitAmount: 1, flatAmount: 700 },
      ],
    });
    expect(periodAmount(p, 0).usageAmount).toBe(300);
    expect(periodAmount(p, 10).usageAmount).toBe(310);
    expect(periodAmount(p, 11).usageAmount).toBe(1011);
    // With included units, the first Stripe tier is the free one: the overage tier's flat waits for a unit.
    const included = metered({ includedUnits: 5, tiers: [{ upTo: null, unitAmount: 1, flatAmount: 300 }] });
    expect(periodAmount(included, 0).usageAmount).toBe(0);
    expect(periodAmount(included, 6).usageAmount).toBe(301);
  });

  it("counts overage tiers from the end of the included units, as the Stripe price's tiers do", () => {
    const p = metered({
      includedUnits: 100,
      tiers: [
        { upTo: 50, unitAmount: 10 },
        { upTo: null, unitAmount: 5 },
      ],
    });
    expect(stripeTiers(p)).toEqual([
      { up_to: 100, unit_amount: 0, flat_amount: 0 },
      { up_to: 150, unit_amount: 10, flat_amount: 0 },
      { up_to: "inf", unit_amount: 5, flat_amount: 0 },
    ]);
    expect(periodAmount(p, 150).total).toBe(500);
    expect(periodAmount(p, 151).total).toBe(505);
  });

  it("refuses tiers that do not end open, do not ascend, or amounts that are not whole minor units", () => {
    const bad = [
      { tiers: [{ upTo: 10, unitAmount: 1 }] },
      {
        tiers: [
          { upTo: null, unitAmount: 1 },
          { upTo: null, unitAmount: 1 },
        ],
      },
      {
        tiers: [
          { upTo: 10, unitAmount: 1 },
          { upTo: 10, unitAmount: 1 },
          { upTo: null, unitAmount: 1 },
        ],
      },
      { tiers: [{ upTo: null, unitAmount: 0.5 }] },
      { baseFee: -1, tiers: [{ upTo: null, unitAmount: 1 }] },
      { currency: "USD", tiers: [{ upTo: null, unitAmount: 1 }] },
    ];
    for (const p of bad)
      expect(
        PlanPricingInput.safeParse({ model: "metered", currency: "usd", ...p }).success,
        JSON.stringify(p),
      ).toBe(false);
    expect(PlanPricingInput.safeParse({ model: "free" }).success).toBe(true);
    expect(
      PlanPricingInput.safeParse({
        model: "prepaid",
        currency: "eur",
        creditPack: { units: 10_000, amount: 1000 },
      }).success,
    ).toBe(true);
  });
});
