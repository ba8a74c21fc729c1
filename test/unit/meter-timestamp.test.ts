/**
 * The instant a tenant-hour's meter event is stamped with: Stripe bills a period's meter events by
 * timestamp in [period start, period end), so an hour that began before the subscription (its
 * first, partial hour, or hours before a late subscription) is stamped at the subscription's start.
 */
import { describe, expect, it } from "vitest";
import { meterTimestamp } from "../../workers/metering/stripe-reporter";

const at = (iso: string) => Date.parse(iso);
const s = (iso: string) => at(iso) / 1000;

describe("meter event timestamps", () => {
  it("stamps the hour the subscription started in, and hours before it, at the subscription's start", () => {
    const start = at("2027-03-10T08:30:15Z");
    expect(meterTimestamp(at("2027-03-10T08:00:00Z"), start)).toBe(s("2027-03-10T08:30:15Z"));
    expect(meterTimestamp(at("2027-03-09T22:00:00Z"), start)).toBe(s("2027-03-10T08:30:15Z"));
  });

  it("stamps later hours, and every hour without a subscription start, at the hour's start", () => {
    const start = at("2027-03-10T08:30:15Z");
    expect(meterTimestamp(at("2027-03-10T09:00:00Z"), start)).toBe(s("2027-03-10T09:00:00Z"));
    expect(meterTimestamp(at("2027-03-10T08:00:00Z"), null)).toBe(s("2027-03-10T08:00:00Z"));
  });

  it("rounds a subscription start with milliseconds down to Stripe's whole second, still inside the period", () => {
    expect(meterTimestamp(at("2027-03-10T08:00:00Z"), at("2027-03-10T08:30:15.999Z"))).toBe(
      s("2027-03-10T08:30:15Z"),
    );
  });
});
