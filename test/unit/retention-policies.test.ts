import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION } from "../../workers/config";
import {
  cutoffs,
  daysBefore,
  HOUSEKEEPING_DAYS,
  monthsBefore,
  RETENTION_KINDS,
  rawUsageKeptFrom,
} from "../../workers/retention/policies";

const at = (iso: string) => Date.parse(iso);
const iso = (d: Date | number) => new Date(d).toISOString();

describe("retention cutoffs", () => {
  it("counts days as whole 24 h days before the run, to the millisecond", () => {
    expect(iso(daysBefore(at("2026-12-01T09:30:15.123Z"), 90))).toBe("2026-09-02T09:30:15.123Z");
    expect(iso(daysBefore(at("2026-03-01T00:00:00.000Z"), 1))).toBe("2026-02-28T00:00:00.000Z");
  });

  it("counts rollup months on the calendar, clamped at month ends, never skipping a month", () => {
    expect(iso(monthsBefore(at("2026-12-01T09:30:00Z"), 25))).toBe("2024-11-01T09:30:00.000Z");
    // 31 March − 1 month is the last day of February (leap and common years), not 3 March.
    expect(iso(monthsBefore(at("2027-03-31T12:00:00Z"), 1))).toBe("2027-02-28T12:00:00.000Z");
    expect(iso(monthsBefore(at("2028-03-31T12:00:00Z"), 1))).toBe("2028-02-29T12:00:00.000Z");
    // 31 May − 25 months = 30 April two years before; a run a day later cuts a day later.
    expect(iso(monthsBefore(at("2026-05-31T00:00:00Z"), 25))).toBe("2024-04-30T00:00:00.000Z");
    expect(iso(monthsBefore(at("2026-06-01T00:00:00Z"), 25))).toBe("2024-05-01T00:00:00.000Z");
    // Across a year boundary.
    expect(iso(monthsBefore(at("2027-01-15T06:00:00Z"), 2))).toBe("2026-11-15T06:00:00.000Z");
  });

  it("gives every kind its own cutoff from the vars, and 30 days to sessions and portal codes", () => {
    const now = at("2026-12-01T00:00:00Z");
    const cut = cutoffs(now, DEFAULT_RETENTION);
    expect(Object.keys(cut).sort()).toEqual([...RETENTION_KINDS].sort());
    expect(Object.fromEntries(Object.entries(cut).map(([k, v]) => [k, iso(v)]))).toEqual({
      usage_events: "2026-09-02T00:00:00.000Z",
      usage_rollups: "2024-11-01T00:00:00.000Z",
      audit_requests: "2025-12-01T00:00:00.000Z",
      audit_actions: "2019-12-01T00:00:00.000Z",
      webhook_attempts: "2026-11-01T00:00:00.000Z",
      webhook_deliveries: "2026-11-01T00:00:00.000Z",
      webhook_events: "2026-11-01T00:00:00.000Z",
      web_sessions: "2026-11-01T00:00:00.000Z",
      portal_codes: "2026-11-01T00:00:00.000Z",
      shadow_results: "2024-11-01T00:00:00.000Z",
      shadow_mismatches: "2026-09-02T00:00:00.000Z",
    });
    expect(HOUSEKEEPING_DAYS).toBe(30);
    const custom = cutoffs(now, { ...DEFAULT_RETENTION, usageEventsDays: 7, rollupsMonths: 1 });
    expect(iso(custom.usage_events)).toBe("2026-11-24T00:00:00.000Z");
    expect(iso(custom.usage_rollups)).toBe("2026-11-01T00:00:00.000Z");
  });

  it("reads raw usage only from the first whole hour no run can have pruned", () => {
    // 90 days before 10:20 is 10:20: the 10:00 hour may have lost its first 20 minutes.
    expect(iso(rawUsageKeptFrom(at("2026-12-01T10:20:00Z"), 90))).toBe("2026-09-02T11:00:00.000Z");
    expect(iso(rawUsageKeptFrom(at("2026-12-01T10:00:00Z"), 90))).toBe("2026-09-02T10:00:00.000Z");
  });
});
