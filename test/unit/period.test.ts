import { describe, expect, it } from "vitest";
import { addMonths, nextPeriodEnd } from "../../workers/billing/period";

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
