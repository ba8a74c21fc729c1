import { describe, expect, it } from "vitest";
import {
  creditGauge,
  crossedMarks,
  crossings,
  type Gauge,
  quotaGauge,
  thresholdEvent,
  thresholdEventId,
} from "../../durable-objects/thresholds";

/** The crossings of one credits gauge. */
const spend = (gauge: Gauge | null) => crossings(gauge ? [gauge] : []);

/** Spends `limit` one unit at a time; answers at which usage each threshold fired. */
function firedAt(limit: number): Record<number, number[]> {
  const fired: Record<number, number[]> = { 80: [], 100: [] };
  for (let used = 1; used <= limit; used++)
    for (const t of crossedMarks(used - 1, used, limit)) fired[t]?.push(used);
  return fired;
}

describe("usage thresholds", () => {
  it.each([
    [5, 4, 5],
    [10, 8, 10],
    [7, 6, 7],
    [100, 80, 100],
    [3, 3, 3],
  ])(
    "limit %i, one unit at a time: the 80 mark fires once at %i, the 100 mark once at %i",
    (limit, at80, at100) => {
      expect(firedAt(limit)).toEqual({ 80: [at80], 100: [at100] });
    },
  );

  it("limit 1: the one unit crosses 80 % and 100 % together", () => {
    expect(crossedMarks(0, 1, 1)).toEqual([80, 100]);
    expect(firedAt(1)).toEqual({ 80: [1], 100: [1] });
  });

  it("a cost above 1 that jumps over a mark fires it once, on the jump", () => {
    expect(crossedMarks(6, 9, 10)).toEqual([80]);
    expect(crossedMarks(9, 10, 10)).toEqual([100]);
    expect(crossedMarks(8, 9, 10)).toEqual([]);
    expect(crossedMarks(4, 6, 7)).toEqual([80]);
    expect(crossedMarks(3, 5, 7)).toEqual([]);
  });

  it("one jump across both marks fires both", () => {
    expect(crossedMarks(0, 10, 10)).toEqual([80, 100]);
    expect(crossedMarks(5, 7, 7)).toEqual([80, 100]);
    expect(crossedMarks(79, 100, 100)).toEqual([80, 100]);
  });

  it("a limit exactly at a mark is reached, not passed by one", () => {
    expect(crossedMarks(7, 8, 10)).toEqual([80]);
    expect(crossedMarks(8, 8, 10)).toEqual([]);
    expect(crossedMarks(99, 100, 100)).toEqual([100]);
  });

  it("no limit (or a zero one) has nothing to cross", () => {
    expect(crossedMarks(0, 1_000, null)).toEqual([]);
    expect(crossedMarks(0, 1, 0)).toEqual([]);
  });

  it("whatever the costs, each mark fires exactly once on the way to the limit", () => {
    for (let limit = 1; limit <= 60; limit++) {
      for (const cost of [1, 2, 3, 5, 7, 13]) {
        const fired: number[] = [];
        let used = 0;
        while (used + cost <= limit) {
          fired.push(...crossedMarks(used, used + cost, limit));
          used += cost;
        }
        // The rest of the way, as a last smaller request (admission never exceeds the limit).
        if (used < limit) fired.push(...crossedMarks(used, limit, limit));
        expect(
          fired.sort((a, b) => a - b),
          `limit ${limit}, cost ${cost}`,
        ).toEqual([80, 100]);
      }
    }
  });

  it("quota gauges count the request's cost in its period", () => {
    const daily = quotaGauge("daily", { period: "2026-12-01", used: 80 }, 5, 100);
    expect(daily).toEqual({ window: "daily", period: "2026-12-01", before: 75, after: 80, limit: 100 });
    const monthly = quotaGauge("monthly", { period: "2026-12", used: 5 }, 5, null);
    expect(crossings([daily, monthly])).toEqual([
      { window: "daily", period: "2026-12-01", threshold: 80, used: 80, limit: 100 },
    ]);
  });

  it("credits: 80 % when 80 % of the top-up's balance is spent, 100 % when the balance reaches 0", () => {
    const topUp = { grantId: "cg_1", base: 100 };
    expect(spend(creditGauge(topUp, 79, 21))).toEqual([]);
    expect(spend(creditGauge(topUp, 1, 20))).toEqual([
      { window: "credits", period: "cg_1", threshold: 80, used: 80, limit: 100 },
    ]);
    expect(spend(creditGauge(topUp, 1, 0))).toEqual([
      { window: "credits", period: "cg_1", threshold: 100, used: 100, limit: 100 },
    ]);
    // Base 7: 80 % is 5.6 units spent, so the 6th unit (balance 1) crosses it.
    const seven = { grantId: "cg_2", base: 7 };
    expect(spend(creditGauge(seven, 1, 2))).toEqual([]);
    expect(spend(creditGauge(seven, 1, 1))).toMatchObject([{ threshold: 80 }]);
    expect(spend(creditGauge(seven, 3, 0))).toMatchObject([{ threshold: 80 }, { threshold: 100 }]);
  });

  it("credits before any top-up have no gauge", () => {
    expect(creditGauge(null, 1, 0)).toBeNull();
  });

  it("the event carries the catalogue's data and a deterministic id per tenant, env, window, period and threshold", async () => {
    const crossing = { window: "daily", period: "2026-12-01", threshold: 80, used: 80, limit: 100 } as const;
    const event = thresholdEvent("ten_a", "live", crossing, Date.parse("2026-12-01T10:00:00Z"));
    expect(event).toEqual({
      tenantId: "ten_a",
      type: "usage.threshold.reached",
      data: { window: "daily", threshold: 80, env: "live", period: "2026-12-01", used: 80, limit: 100 },
      at: "2026-12-01T10:00:00.000Z",
    });
    // sha256("ten_a|live|daily|2026-12-01|80")
    expect(await thresholdEventId(event)).toBe(
      "evt_9bb72c7e476f0cabad941cd5dbf4a2fa2e9852df52da9d8e504a78ad3a500792",
    );
    const later = thresholdEvent("ten_a", "live", { ...crossing, used: 81 }, Date.now());
    expect(await thresholdEventId(later)).toBe(await thresholdEventId(event));
    const ids = await Promise.all([
      thresholdEventId(thresholdEvent("ten_a", "test", crossing, 0)),
      thresholdEventId(thresholdEvent("ten_b", "live", crossing, 0)),
      thresholdEventId(thresholdEvent("ten_a", "live", { ...crossing, threshold: 100 }, 0)),
      thresholdEventId(thresholdEvent("ten_a", "live", { ...crossing, period: "2026-12-02" }, 0)),
      thresholdEventId(thresholdEvent("ten_a", "live", { ...crossing, window: "monthly" }, 0)),
    ]);
    expect(new Set([...ids, await thresholdEventId(event)]).size).toBe(6);
  });
});
