import { describe, expect, it } from "vitest";
import { logNormal, seeded } from "../../bench/lib/seeded";
import {
  BASELINE_WINDOW_MS,
  DEGRADED_HOLD_MS,
  INITIAL_LIMIT,
  MAX_LIMIT,
  MIN_LIMIT,
  MIN_SAMPLES,
  OriginHealth,
} from "../../workers/edge/origin-health";

/** `count` responses of `rttMs`, one per `every` ms (10) from `from`, each replaced at once so `concurrency` stay at the origin. */
function respond(
  health: OriginHealth,
  o: { count: number; rttMs: number; from: number; error?: boolean; concurrency?: number; every?: number },
): number {
  let now = o.from;
  while (health.inFlight < (o.concurrency ?? 1)) health.begin();
  for (let i = 0; i < o.count; i++) {
    now += o.every ?? 10;
    health.end({ rttMs: o.rttMs, error: o.error ?? false }, now);
    health.begin();
  }
  return now;
}

describe("origin health (gradient limiter)", () => {
  it("stays healthy, and its limit climbs while a healthy origin is used up to it", () => {
    const health = new OriginHealth();
    const now = respond(health, { count: 200, rttMs: 50, from: 0, concurrency: 40 });
    expect(health.degraded(now)).toBe(false);
    expect(health.baselineRttMs).toBe(50);
    expect(health.limit).toBeGreaterThan(INITIAL_LIMIT * 2);
    expect(health.limit).toBeLessThanOrEqual(MAX_LIMIT);
  });

  it("grows its limit only while latency is in the lower half of the healthy band, and holds it above", () => {
    const health = new OriginHealth();
    // The baseline learnt at 100 ms (the line then ≈ 115 ms), with the route using its limit.
    let now = respond(health, { count: 300, rttMs: 100, from: 0, concurrency: 20 });
    // 112 ms: healthy, but a queue is forming — once the recent average has moved there, the limit
    // holds rather than probing further…
    now = respond(health, { count: 30, rttMs: 112, from: now, concurrency: 20 });
    const learnt = health.limit;
    now = respond(health, { count: 300, rttMs: 112, from: now, concurrency: learnt });
    expect(health.degraded(now)).toBe(false);
    expect(health.limit).toBe(learnt);
    // …and at 104 ms, near the baseline again, it grows.
    respond(health, { count: 300, rttMs: 104, from: now, concurrency: learnt });
    expect(health.limit).toBeGreaterThan(learnt);
  });

  it("does not grow the limit of a route that uses little of it", () => {
    const health = new OriginHealth();
    respond(health, { count: 200, rttMs: 50, from: 0, concurrency: 1 });
    expect(health.limit).toBe(INITIAL_LIMIT);
  });

  it("is not judged before it has seen a few responses", () => {
    const health = new OriginHealth();
    const now = respond(health, { count: MIN_SAMPLES - 1, rttMs: 5_000, from: 0, error: true });
    expect(health.degraded(now)).toBe(false);
  });

  it("degrades when latency rises tenfold, and its limit falls toward the floor", () => {
    const health = new OriginHealth();
    // Long enough for a few one-second buckets: the baseline is their mean, 50 ms.
    let now = respond(health, { count: 300, rttMs: 50, from: 0, concurrency: 20 });
    const before = health.limit;
    expect(health.degraded(now)).toBe(false);
    now = respond(health, { count: 30, rttMs: 500, from: now, concurrency: 20 });
    expect(health.degraded(now)).toBe(true);
    expect(health.limit).toBeLessThan(before);
    now = respond(health, { count: 2_000, rttMs: 500, from: now, concurrency: 20 });
    expect(health.limit).toBeCloseTo(MIN_LIMIT, 0);
    expect(health.degraded(now)).toBe(true);
  });

  it("moves the limit at most once per baseline round trip: a burst of slow answers is one signal", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 300, rttMs: 50, from: 0, concurrency: 20 });
    // The first slow answer turns it degraded (the limit capped at the 20 in flight)…
    now = respond(health, { count: 1, rttMs: 500, from: now, concurrency: 20, every: 1 });
    const capped = health.limit;
    // …then 99 more within 100 ms: the limit steps down twice at most (the baseline is 50 ms).
    now = respond(health, { count: 99, rttMs: 500, from: now, concurrency: 20, every: 1 });
    expect(health.limit).toBeLessThan(capped);
    expect(health.limit).toBeGreaterThan(capped * 0.75);
  });

  it("never sheds a healthy route, however many requests it carries", () => {
    const health = new OriginHealth();
    const now = respond(health, { count: 300, rttMs: 50, from: 0, concurrency: 1 });
    while (health.inFlight < INITIAL_LIMIT * 3) health.begin();
    expect(health.degraded(now)).toBe(false);
  });

  it("on turning degraded, caps the limit at the concurrency where the origin started to queue", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 300, rttMs: 50, from: 0, concurrency: 1 });
    expect(health.limit).toBe(INITIAL_LIMIT);
    now = respond(health, { count: 5, rttMs: 500, from: now, concurrency: 8 });
    expect(health.degraded(now)).toBe(true);
    expect(health.limit).toBeLessThanOrEqual(8);
  });

  it("tolerates jitter of a loopback-fast origin (the absolute slack)", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 20, rttMs: 1, from: 0 });
    now = respond(health, { count: 20, rttMs: 10, from: now });
    expect(health.degraded(now)).toBe(false);
  });

  it("degrades on errors at normal latency, backing the limit off", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 20, rttMs: 50, from: 0 });
    now = respond(health, { count: 5, rttMs: 50, from: now, error: true, every: 100 });
    expect(health.degraded(now)).toBe(true);
    expect(health.errorRate).toBeGreaterThan(0.25);
    expect(health.limit).toBeLessThan(INITIAL_LIMIT);
  });

  it("recovers: healthy responses clear the signal after the hold, and the limit climbs again", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 300, rttMs: 50, from: 0, concurrency: 10 });
    now = respond(health, { count: 60, rttMs: 500, from: now, concurrency: 10 });
    expect(health.degraded(now)).toBe(true);
    const low = health.limit;
    now = respond(health, { count: 100, rttMs: 50, from: now, concurrency: 10 });
    expect(health.degraded(now + DEGRADED_HOLD_MS)).toBe(false);
    expect(health.limit).toBeGreaterThan(low);
  });

  it("stays degraded while requests are still being shed, and lets go once they stop", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 20, rttMs: 50, from: 0 });
    now = respond(health, { count: 5, rttMs: 500, from: now });
    for (let i = 0; i < 10; i++) {
      now += DEGRADED_HOLD_MS / 2;
      health.noteShed(now);
    }
    expect(health.degraded(now + DEGRADED_HOLD_MS - 1)).toBe(true);
    expect(health.degraded(now + DEGRADED_HOLD_MS)).toBe(false);
    // A shed noted on a healthy route does not degrade it.
    health.noteShed(now + DEGRADED_HOLD_MS);
    expect(health.degraded(now + DEGRADED_HOLD_MS + 1)).toBe(false);
  });

  it("does not let a flood's queueing widen the spread, and with it the healthy line", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 300, rttMs: 100, from: 0, concurrency: 10 });
    // The origin queues: answers swing between 100 and 150 ms with 10 requests at it. The recent
    // average dips under the line now and then; learning from those, the spread grew and lifted the
    // line until the flood looked healthy.
    const flood = (count: number) => {
      for (let i = 0; i < count; i++)
        now = respond(health, { count: 1, rttMs: i % 2 ? 150 : 100, from: now, concurrency: 10 });
    };
    flood(20);
    expect(health.degraded(now)).toBe(true);
    const atDegraded = health.spreadMs;
    flood(2_000);
    expect(health.spreadMs).toBe(atDegraded);
    expect(health.degraded(now)).toBe(true);
  });

  it("takes one-second means as the baseline, so a wide but steady spread is healthy", () => {
    const health = new OriginHealth();
    let now = 0;
    for (let i = 0; i < 300; i++)
      now = respond(health, { count: 1, rttMs: i % 2 === 0 ? 20 : 180, from: now });
    expect(health.baselineRttMs).toBe(100);
    expect(health.degraded(now)).toBe(false);
  });

  it("forgets an old baseline after the long window, so a lasting change becomes the new normal", () => {
    const health = new OriginHealth();
    let now = respond(health, { count: 200, rttMs: 10, from: 0 });
    expect(health.baselineRttMs).toBe(10);
    now = respond(health, { count: 200, rttMs: 100, from: now + BASELINE_WINDOW_MS / 2 });
    expect(health.baselineRttMs).toBe(10);
    now = respond(health, { count: 200, rttMs: 100, from: now + BASELINE_WINDOW_MS / 2 });
    expect(health.baselineRttMs).toBe(100);
    expect(health.degraded(now + DEGRADED_HOLD_MS)).toBe(false);
  });

  describe("an origin whose latency has a wide spread (log-normal; by default median 100 ms, 20 responses/s)", () => {
    /**
     * `perSecond` responses a second (20) for `seconds`, each `factor` × a log-normal draw around
     * `medianMs` (100); the share of the time judged degraded.
     */
    function run(
      health: OriginHealth,
      o: {
        sigma: number;
        seconds: number;
        from: number;
        factor?: number;
        perSecond?: number;
        medianMs?: number;
      },
    ) {
      const random = seeded(42);
      const count = o.seconds * (o.perSecond ?? 20);
      let now = o.from;
      let degraded = 0;
      let firstDegradedAt: number | null = null;
      for (let i = 0; i < count; i++) {
        now += 1_000 / (o.perSecond ?? 20);
        health.begin();
        const rttMs = (o.factor ?? 1) * logNormal(random, o.medianMs ?? 100, o.sigma);
        health.end({ rttMs, error: false }, now);
        if (health.degraded(now)) {
          degraded++;
          firstDegradedAt ??= now;
        }
      }
      return { now, degradedShare: degraded / count, firstDegradedAt };
    }

    it.each([0.2, 0.3, 0.5])("is never judged degraded while healthy (σ = %s)", (sigma) => {
      // A short average against 1.2 × the calmest second's mean tripped at σ 0.3 (p90 ≈ 1.5 × median)
      // 92–97 % of the time, and each trip held for 5 s: shedding while the origin was fine.
      expect(run(new OriginHealth(), { sigma, seconds: 300, from: 0 }).degradedShare).toBe(0);
    });

    it.each([
      { perSecond: 5, medianMs: 100 },
      { perSecond: 5, medianMs: 1_000 },
    ])(
      "is not latched degraded by its first verdict ($perSecond responses/s, median $medianMs ms, σ = 0.5)",
      (o) => {
        // The spread used to start at 0 and learn slowly: still near 0 at the first verdict, the line
        // was tight, the first slow response tripped it, and frozen while degraded the spread never
        // grew. These two were judged degraded 52 % and 99.7 % of the time.
        expect(
          run(new OriginHealth(), { sigma: 0.5, seconds: 600, from: 0, ...o }).degradedShare,
        ).toBeLessThan(0.05);
      },
    );

    it.each([2, 3, 10])("still degrades within a second when it slows %s×", (factor) => {
      const health = new OriginHealth();
      const healthy = run(health, { sigma: 0.3, seconds: 120, from: 0 });
      const slow = run(health, { sigma: 0.3, seconds: 10, from: healthy.now, factor });
      expect(slow.firstDegradedAt).not.toBeNull();
      expect((slow.firstDegradedAt as number) - healthy.now).toBeLessThanOrEqual(1_000);
    });
  });
});
