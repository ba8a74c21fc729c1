import { describe, expect, it } from "vitest";
import { refill, secondsUntil, secondsUntilFull, windowSeconds } from "../../durable-objects/token-bucket";

const limit = { burstCapacity: 10, refillTokens: 1, refillPeriodSeconds: 6 };

describe("token bucket", () => {
  it("starts full and refills continuously up to the capacity", () => {
    const fresh = refill(limit, null, 1000);
    expect(fresh).toEqual({ tokens: 10, updatedAt: 1000, capacity: 10 });
    const later = refill(limit, { tokens: 0, updatedAt: 0, capacity: 10 }, 30_000);
    expect(later.tokens).toBeCloseTo(5);
    expect(refill(limit, { tokens: 0, updatedAt: 0, capacity: 10 }, 3_600_000).tokens).toBe(10);
  });

  it("never refills backwards when the clock goes back", () => {
    expect(refill(limit, { tokens: 3, updatedAt: 10_000, capacity: 10 }, 5_000).tokens).toBe(3);
  });

  it("caps a bucket whose capacity shrank, and credits a raised capacity at once", () => {
    expect(refill({ ...limit, burstCapacity: 2 }, { tokens: 9, updatedAt: 0, capacity: 10 }, 0).tokens).toBe(
      2,
    );
    expect(refill({ ...limit, burstCapacity: 25 }, { tokens: 1, updatedAt: 0, capacity: 10 }, 0)).toEqual({
      tokens: 16,
      updatedAt: 0,
      capacity: 25,
    });
  });

  it("says exactly how long until a cost fits", () => {
    expect(secondsUntil(limit, { tokens: 1, updatedAt: 0, capacity: 10 }, 1)).toBe(0);
    expect(secondsUntil(limit, { tokens: 0, updatedAt: 0, capacity: 10 }, 1)).toBe(6);
    expect(secondsUntil(limit, { tokens: 0.5, updatedAt: 0, capacity: 10 }, 1)).toBe(3);
    expect(secondsUntil(limit, { tokens: 0, updatedAt: 0, capacity: 10 }, 3)).toBe(18);
    expect(secondsUntil(limit, { tokens: 10, updatedAt: 0, capacity: 10 }, 11)).toBe(
      Number.POSITIVE_INFINITY,
    );
  });

  it("reports the window and time to full for the RateLimit headers", () => {
    expect(windowSeconds(limit)).toBe(60);
    expect(windowSeconds({ burstCapacity: 100, refillTokens: 100, refillPeriodSeconds: 60 })).toBe(60);
    expect(secondsUntilFull(limit, { tokens: 4, updatedAt: 0, capacity: 10 })).toBe(36);
  });
});
