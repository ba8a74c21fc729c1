import { describe, expect, it } from "vitest";
import { currentUsage, periodEnd, periodOf } from "../../durable-objects/quota";

const at = (iso: string) => Date.parse(iso);

describe("calendar quotas", () => {
  it("names periods in UTC", () => {
    expect(periodOf("daily", at("2026-11-22T23:59:59.999Z"))).toBe("2026-11-22");
    expect(periodOf("daily", at("2026-11-23T00:00:00.000Z"))).toBe("2026-11-23");
    expect(periodOf("monthly", at("2026-12-31T23:59:59Z"))).toBe("2026-12");
  });

  it("ends days at UTC midnight and months on the first, across year ends and leap days", () => {
    expect(periodEnd("daily", at("2026-11-22T10:00:00Z"))).toBe(at("2026-11-23T00:00:00Z"));
    expect(periodEnd("monthly", at("2026-12-15T00:00:00Z"))).toBe(at("2027-01-01T00:00:00Z"));
    expect(periodEnd("daily", at("2028-02-28T12:00:00Z"))).toBe(at("2028-02-29T00:00:00Z"));
    expect(periodEnd("monthly", at("2028-02-10T00:00:00Z"))).toBe(at("2028-03-01T00:00:00Z"));
  });

  it("rolls usage over lazily when the period changes, however long the gap", () => {
    const stored = { period: "2026-11-22", used: 99 };
    expect(currentUsage("daily", stored, at("2026-11-22T23:00:00Z"))).toEqual(stored);
    expect(currentUsage("daily", stored, at("2026-11-23T00:00:00Z"))).toEqual({
      period: "2026-11-23",
      used: 0,
    });
    expect(currentUsage("monthly", { period: "2025-01", used: 5 }, at("2026-11-01T00:00:00Z"))).toEqual({
      period: "2026-11",
      used: 0,
    });
    expect(currentUsage("daily", null, at("2026-11-22T00:00:00Z"))).toEqual({
      period: "2026-11-22",
      used: 0,
    });
  });

  it("rolls the day and the month over together at a month's last midnight", () => {
    const before = at("2027-01-31T23:59:59.900Z");
    const after = at("2027-02-01T00:00:00.100Z");
    expect([periodOf("daily", before), periodOf("monthly", before)]).toEqual(["2027-01-31", "2027-01"]);
    expect([periodOf("daily", after), periodOf("monthly", after)]).toEqual(["2027-02-01", "2027-02"]);
    expect([periodEnd("daily", before), periodEnd("monthly", before)]).toEqual([
      at("2027-02-01T00:00:00Z"),
      at("2027-02-01T00:00:00Z"),
    ]);
    expect([periodEnd("daily", after), periodEnd("monthly", after)]).toEqual([
      at("2027-02-02T00:00:00Z"),
      at("2027-03-01T00:00:00Z"),
    ]);
    const day = { period: "2027-01-31", used: 7 };
    const month = { period: "2027-01", used: 70 };
    expect([currentUsage("daily", day, before), currentUsage("monthly", month, before)]).toEqual([
      day,
      month,
    ]);
    expect([currentUsage("daily", day, after), currentUsage("monthly", month, after)]).toEqual([
      { period: "2027-02-01", used: 0 },
      { period: "2027-02", used: 0 },
    ]);
  });
});
