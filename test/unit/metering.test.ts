import { describe, expect, it } from "vitest";
import {
  addHistograms,
  bucketOf,
  emptyHistogram,
  percentile,
} from "../../workers/metering/latency-histogram";
import { differs } from "../../workers/metering/reconciliation";
import { rollUp } from "../../workers/metering/rollup";
import { backoffSeconds } from "../../workers/shared/backoff";
import { usageEvent } from "../support/usage-events";

const event = usageEvent;

describe("rollups", () => {
  it("groups by tenant, hour/day, route and status class, counting billable units only when billable", () => {
    const { rollups, outbox } = rollUp([
      event({ units: 1 }),
      event({ units: 5, route: "/v1/reports/" }),
      event({ status: 503, billable: false }),
      event({ ts: "2026-11-22T11:59:59.999Z", latencyMs: 3000 }),
      event({ tenantId: "ten_b" }),
    ]);
    const hour10 = rollups.find(
      (r) =>
        r.tenantId === "ten_a" &&
        r.granularity === "hour" &&
        r.route === "/v1/" &&
        r.statusClass === 2 &&
        r.bucketStart.toISOString() === "2026-11-22T10:00:00.000Z",
    );
    expect(hour10).toMatchObject({
      requests: 1,
      billableRequests: 1,
      billableUnits: 1,
      bytesIn: 10,
      bytesOut: 100,
    });
    const day = rollups.filter((r) => r.tenantId === "ten_a" && r.granularity === "day");
    expect(day.reduce((a, r) => a + r.requests, 0)).toBe(4);
    expect(day.reduce((a, r) => a + r.billableUnits, 0)).toBe(7);
    expect(rollups.find((r) => r.statusClass === 5)).toMatchObject({ requests: 1, billableUnits: 0 });
    expect(outbox.map((o) => [o.tenantId, o.hour.toISOString(), o.units]).sort()).toEqual([
      ["ten_a", "2026-11-22T10:00:00.000Z", 6],
      ["ten_a", "2026-11-22T11:00:00.000Z", 1],
      ["ten_b", "2026-11-22T10:00:00.000Z", 1],
    ]);
  });
});

describe("latency histogram", () => {
  it("buckets latencies and reads percentiles back at bucket resolution", () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(7)).toBe(3);
    expect(bucketOf(10)).toBe(3);
    expect(bucketOf(60_000)).toBe(14);
    const one = (ms: number, n = 1) => emptyHistogram().map((_, i) => (i === bucketOf(ms) ? n : 0));
    const h = addHistograms(addHistograms(one(8, 98), one(150)), one(4000));
    expect(percentile(h, 0.5)).toBe(10);
    expect(percentile(h, 0.99)).toBe(200);
    expect(percentile(h, 1)).toBe(5000);
    expect(percentile(emptyHistogram(), 0.5)).toBeNull();
  });
});

describe("consumer backoff and reconciliation rule", () => {
  it("backs off exponentially to a 5-minute cap", () => {
    expect([1, 2, 3, 8, 9, 20].map(backoffSeconds)).toEqual([2, 4, 8, 256, 300, 300]);
  });

  it("flags any leg that disagrees", () => {
    const ok = {
      admittedRequests: 3,
      usageRows: 3,
      billableUnits: 5,
      outboxUnits: 5,
      outboxPendingUnits: 0,
      outboxFailedUnits: 0,
      outboxFailure: null,
      stripeUnits: 5,
      lapsedLeaseUnits: 0,
    };
    expect(differs(ok)).toBe(false);
    expect(differs({ ...ok, stripeUnits: null })).toBe(false);
    expect(differs({ ...ok, usageRows: 2 })).toBe(true);
    expect(differs({ ...ok, outboxUnits: 4 })).toBe(true);
    expect(differs({ ...ok, stripeUnits: 6 })).toBe(true);
    // Units Stripe will never bill differ even where Stripe is not consulted.
    expect(
      differs({
        ...ok,
        stripeUnits: null,
        outboxFailedUnits: 2,
        outboxFailure: "older than Stripe's 35-day …",
      }),
    ).toBe(true);
  });
});
