import { describe, expect, it } from "vitest";
import { addMonths, calendarMonth, nextPeriodEnd, subscriptionPeriod } from "../../workers/billing/period";

const at = (iso: string) => Date.parse(iso);

describe("monthly billing periods", () => {
  it("ends on the anchor's day and time, clamped to short months without drifting", () => {
    const anchor = at("2026-01-31T10:15:00Z");
    expect(new Date(addMonths(anchor, 1)).toISOString()).toBe("2026-02-28T10:15:00.000Z");
    expect(new Date(addMonths(anchor, 2)).toISOString()).toBe("2026-03-31T10:15:00.000Z");
    expect(new Date(addMonths(anchor, 12)).toISOString()).toBe("2027-01-31T10:15:00.000Z");
  });

  it("rolls a stale period end forward to the first one after now", () => {
    const end = at("2026-03-15T00:00:00Z");
    expect(nextPeriodEnd(end, at("2026-03-01T00:00:00Z"))).toBe(end);
    expect(new Date(nextPeriodEnd(end, end)).toISOString()).toBe("2026-04-15T00:00:00.000Z");
    expect(new Date(nextPeriodEnd(end, at("2026-07-20T00:00:00Z"))).toISOString()).toBe(
      "2026-08-15T00:00:00.000Z",
    );
  });
});

describe("the period a billing view shows", () => {
  it("is the subscription's period around now, rolled forward from a stale known end", () => {
    const end = at("2026-03-15T10:00:00Z");
    const iso = (p: { start: number; end: number }) => [p.start, p.end].map((t) => new Date(t).toISOString());
    expect(iso(subscriptionPeriod(end, at("2026-03-01T00:00:00Z")))).toEqual([
      "2026-02-15T10:00:00.000Z",
      "2026-03-15T10:00:00.000Z",
    ]);
    // At the end's exact instant the next period has begun: [start, end).
    expect(iso(subscriptionPeriod(end, end))).toEqual([
      "2026-03-15T10:00:00.000Z",
      "2026-04-15T10:00:00.000Z",
    ]);
    expect(iso(subscriptionPeriod(end, at("2026-07-20T00:00:00Z")))).toEqual([
      "2026-07-15T10:00:00.000Z",
      "2026-08-15T10:00:00.000Z",
    ]);
  });

  it("is the calendar month (UTC) without a subscription, a leap February included", () => {
    const p = calendarMonth(at("2028-02-29T23:59:59.999Z"));
    expect(new Date(p.start).toISOString()).toBe("2028-02-01T00:00:00.000Z");
    expect(new Date(p.end).toISOString()).toBe("2028-03-01T00:00:00.000Z");
    expect(calendarMonth(p.end).start).toBe(p.end);
    const december = calendarMonth(at("2026-12-31T12:00:00Z"));
    expect(new Date(december.end).toISOString()).toBe("2027-01-01T00:00:00.000Z");
  });
});
