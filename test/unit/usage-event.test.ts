import { describe, expect, it } from "vitest";
import { isBillable, UsageEventSchema } from "../../workers/metering/usage-event";
import { usageEvent } from "../support/usage-events";

describe("usage events", () => {
  it("bills origin 2xx and 4xx on billable routes for live keys only", () => {
    const live = { routeBillable: true, env: "live" as const };
    expect([200, 201, 299, 400, 404, 429, 499].every((status) => isBillable({ ...live, status }))).toBe(true);
    expect([100, 301, 304, 500, 502, 504].some((status) => isBillable({ ...live, status }))).toBe(false);
    expect(isBillable({ status: 200, routeBillable: false, env: "live" })).toBe(false);
    expect(isBillable({ status: 200, routeBillable: true, env: "test" })).toBe(false);
  });

  it("rejects events that break the contract", () => {
    const event = usageEvent();
    expect(UsageEventSchema.safeParse(event).success).toBe(true);
    expect(UsageEventSchema.safeParse({ ...event, id: "nope" }).success).toBe(false);
    expect(UsageEventSchema.safeParse({ ...event, units: -1 }).success).toBe(false);
    expect(UsageEventSchema.safeParse({ ...event, env: "prod" }).success).toBe(false);
  });
});
