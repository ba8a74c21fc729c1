/** The webhook retry schedule (workers/events/retry-schedule.ts): jitter bounds, Retry-After, the end. */
import { describe, expect, it } from "vitest";
import {
  MAX_ATTEMPTS,
  parseRetryAfter,
  RETRY_DELAYS_S,
  retryDelaySeconds,
} from "../../workers/events/retry-schedule";

const NOW = new Date("2026-12-01T10:00:00.000Z");

describe("retryDelaySeconds", () => {
  it("follows 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after attempts 1–7, and stops after the 8th", () => {
    expect(RETRY_DELAYS_S).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(MAX_ATTEMPTS).toBe(8);
    expect(RETRY_DELAYS_S.map((_, i) => retryDelaySeconds(i + 1, { random: 0.5 }))).toEqual([
      ...RETRY_DELAYS_S,
    ]);
    expect(retryDelaySeconds(8, { random: 0.5 })).toBeNull();
    expect(retryDelaySeconds(9)).toBeNull();
  });

  it("jitters by at most ±10 %", () => {
    for (const [i, base] of RETRY_DELAYS_S.entries()) {
      expect(retryDelaySeconds(i + 1, { random: 0 })).toBe(Math.round(base * 0.9));
      expect(retryDelaySeconds(i + 1, { random: 0.999999 })).toBeGreaterThanOrEqual(Math.floor(base * 1.09));
      for (let n = 0; n < 200; n++) {
        const delay = retryDelaySeconds(i + 1) as number;
        expect(delay).toBeGreaterThanOrEqual(Math.round(base * 0.9));
        expect(delay).toBeLessThanOrEqual(Math.round(base * 1.1));
      }
    }
  });

  it("waits for a longer Retry-After, ignores a shorter one, and caps it at 10 h", () => {
    expect(retryDelaySeconds(1, { random: 0.5, retryAfterS: 120 })).toBe(120);
    expect(retryDelaySeconds(2, { random: 0.5, retryAfterS: 120 })).toBe(300);
    expect(retryDelaySeconds(1, { random: 0.5, retryAfterS: 86_400 })).toBe(36_000);
    expect(retryDelaySeconds(1, { random: 0.5, retryAfterS: null })).toBe(5);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds", () => {
    expect(parseRetryAfter("120", NOW)).toBe(120);
    expect(parseRetryAfter(" 7 ", NOW)).toBe(7);
  });

  it("reads an HTTP date as the seconds until it", () => {
    expect(parseRetryAfter("Tue, 01 Dec 2026 12:00:00 GMT", NOW)).toBe(7200);
    expect(parseRetryAfter(new Date(NOW.getTime() + 1500).toUTCString(), NOW)).toBe(1);
  });

  it("ignores what is absent, unreadable, zero or past", () => {
    for (const value of [null, "", "soon", "-5", "1.5", "0", "Tue, 01 Dec 2026 09:00:00 GMT", "12345678901"])
      expect(parseRetryAfter(value, NOW)).toBeNull();
  });
});
