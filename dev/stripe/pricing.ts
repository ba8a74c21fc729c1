/**
 * How the Stripe stand-in turns usage into money: a meter's aggregation of its events
 * (dev/stripe-standin.ts), and a price's amount for a quantity.
 */
import type { AcceptedMeterEvent, Formula } from "./objects";

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
