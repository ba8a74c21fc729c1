/**
 * What a plan costs, as pure functions: the plan's pricing as the admin API takes it, the Stripe
 * prices it becomes, and the amount a period's units come to — computed exactly as Stripe computes
 * an invoice from those prices, so the "so far" and "forecast" a tenant sees are what it will pay.
 *
 * Every amount is an integer in the currency's minor unit (cents for USD): a unit price is whole
 * minor units per unit, tiers are graduated (each unit is priced by the tier it falls in; a tier's
 * flat amount is charged once as soon as any unit falls in it, the first tier's even at zero units),
 * and included units are a first tier at 0. There is nothing to round: Stripe's arithmetic on such prices is exact, and so is ours.
 */
import { z } from "@hono/zod-openapi";
import type { PlanPricing } from "../../schema";

const minor = z.number().int().min(0).max(100_000_000_00);
const units = z.number().int().min(0).max(1_000_000_000_000);

/** One overage tier: units up to `upTo` (counted past the included units; null = no end). */
export const PriceTierInput = z
  .object({ upTo: units.positive().nullable(), unitAmount: minor, flatAmount: minor.default(0) })
  .strict()
  .openapi("PriceTier");

export const PlanPricingInput = z
  .discriminatedUnion("model", [
    z.object({ model: z.literal("free") }).strict(),
    z
      .object({
        model: z.literal("metered"),
        currency: z.string().regex(/^[a-z]{3}$/, "an ISO 4217 code in lower case, e.g. usd"),
        /** Charged every month in advance. */
        baseFee: minor.default(0),
        /** Units each month the base fee covers. */
        includedUnits: units.default(0),
        /** Overage tiers, ascending; the last one has `upTo: null`. One tier = a flat price per unit. */
        tiers: z.array(PriceTierInput).min(1).max(8),
      })
      .strict(),
    z
      .object({
        model: z.literal("prepaid"),
        currency: z.string().regex(/^[a-z]{3}$/, "an ISO 4217 code in lower case, e.g. usd"),
        /** Credits are bought in packs: `units` credits for `amount`. */
        creditPack: z.object({ units: units.positive(), amount: minor.positive() }).strict(),
      })
      .strict(),
  ])
  .superRefine((p, ctx) => {
    if (p.model !== "metered") return;
    p.tiers.forEach((tier, i) => {
      const last = i === p.tiers.length - 1;
      if (last !== (tier.upTo === null))
        ctx.addIssue({
          code: "custom",
          path: ["tiers", i, "upTo"],
          message: last ? "the last tier must have upTo: null" : "only the last tier may have upTo: null",
        });
      const before = p.tiers[i - 1]?.upTo;
      if (tier.upTo !== null && before != null && tier.upTo <= before)
        ctx.addIssue({ code: "custom", path: ["tiers", i, "upTo"], message: "tiers must ascend" });
    });
  })
  .openapi("PlanPricing");

export type { PlanPricing };

/** The validator's output is the stored shape (schema/plans.ts), no more and no less: else this fails to compile. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _shapeMatches: Same<z.output<typeof PlanPricingInput>, PlanPricing> = true;
export type MeteredPricing = Extract<PlanPricing, { model: "metered" }>;

/** A tier as Stripe holds it on a graduated price: `up_to` counts from the first unit of the period. */
export interface StripeTier {
  up_to: number | "inf";
  unit_amount: number;
  flat_amount: number;
}

/** The graduated tiers of the plan's usage price: the included units first, at 0. */
export function stripeTiers(p: MeteredPricing): StripeTier[] {
  const included: StripeTier[] =
    p.includedUnits > 0 ? [{ up_to: p.includedUnits, unit_amount: 0, flat_amount: 0 }] : [];
  return [
    ...included,
    ...p.tiers.map((t) => ({
      up_to: t.upTo === null ? ("inf" as const) : p.includedUnits + t.upTo,
      unit_amount: t.unitAmount,
      flat_amount: t.flatAmount,
    })),
  ];
}

/** One tier's share of a period's units, as an invoice line shows it. */
export interface TierLine {
  /** first and last unit of the tier (1-based, over the period); `to` null = no end */
  from: number;
  to: number | null;
  units: number;
  unitAmount: number;
  flatAmount: number;
  amount: number;
}

export interface PeriodAmount {
  currency: string;
  baseFee: number;
  usageLines: TierLine[];
  usageAmount: number;
  /** base fee + usage, minor units */
  total: number;
}

/** What `units` used in one period cost on a metered plan: base fee plus graduated usage. */
export function periodAmount(p: MeteredPricing, periodUnits: number): PeriodAmount {
  if (!Number.isSafeInteger(periodUnits) || periodUnits < 0)
    throw new RangeError(`bad unit count ${periodUnits}`);
  const usageLines: TierLine[] = [];
  let from = 0;
  for (const tier of stripeTiers(p)) {
    const upTo = tier.up_to === "inf" ? Number.POSITIVE_INFINITY : tier.up_to;
    const inTier = Math.max(0, Math.min(periodUnits, upTo) - from);
    // A tier's flat amount is charged once any unit falls in it — and the first tier's always, even
    // at zero units: the period's quantity always falls in the first tier (as Stripe bills it).
    const amount = inTier > 0 || from === 0 ? inTier * tier.unit_amount + tier.flat_amount : 0;
    usageLines.push({
      from: from + 1,
      to: tier.up_to === "inf" ? null : tier.up_to,
      units: inTier,
      unitAmount: tier.unit_amount,
      flatAmount: tier.flat_amount,
      amount,
    });
    from = upTo;
  }
  const usageAmount = usageLines.reduce((sum, l) => sum + l.amount, 0);
  if (!Number.isSafeInteger(usageAmount + p.baseFee))
    throw new RangeError("amount beyond exact integer range");
  return {
    currency: p.currency,
    baseFee: p.baseFee,
    usageLines,
    usageAmount,
    total: p.baseFee + usageAmount,
  };
}

/** Whether two pricings are the same (whatever the key order, which Postgres jsonb does not keep). */
export function samePricing(a: PlanPricing, b: PlanPricing): boolean {
  const canonical = (v: unknown): string =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : Array.isArray(v)
        ? `[${v.map(canonical).join(",")}]`
        : JSON.stringify(v);
  return canonical(a) === canonical(b);
}
