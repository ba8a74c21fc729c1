/**
 * A route's origin health, learnt from the responses this isolate sees: a gradient concurrency
 * limiter in the style of Netflix's `Gradient2Limit` and Envoy's adaptive concurrency filter. Pure
 * (the caller passes the clock), isolate-local, a few numbers per route; workers/edge/shed.ts reads
 * it to decide when to shed and how much concurrency there is to share.
 *
 * - Baseline: the origin's latency without a queue — the lowest one-second mean round-trip time (to
 *   the origin's response headers) over a long window. A mean of many responses, not the single
 *   fastest one, so an origin whose latency varies widely is not judged degraded by its spread; a
 *   minimum over a minute, so a flood of seconds does not become the new normal.
 * - Recent: a moving average of the last responses' round-trip times and of their error rate
 *   (origin 5xx, timeouts, unreachable).
 * - Limit: the concurrency the origin takes before it queues. It moves toward `limit × gradient`,
 *   where gradient = (tolerance × baseline + slack) / recent, clamped to [½, 1], while a queue builds,
 *   and toward `limit + √limit` while latency stays in the lower half of the healthy band and the
 *   route uses at least half of the limit (held in between); each error takes off 10 %.
 *   The limit moves at most once per baseline round trip (or LIMIT_UPDATE_MS), as TCP Vegas and
 *   Envoy do: a burst of slow answers is one signal, not one per answer, so it does not drive the
 *   limit to the floor at once.
 * - Spread: how far responses stray from the recent average (a slow moving average of
 *   |response − recent|, as TCP's RTTVAR). The healthy line adds SPREAD_ALLOWANCE spreads, so an
 *   origin whose latency varies widely is not judged degraded by one slow response. It starts fast
 *   (SPREAD_PRIOR_SAMPLES) and, while degraded, learns only from responses that came back with the
 *   origin lightly used (in flight ≤ half the limit: jitter, not a queue). Started at 0 it was still
 *   near 0 at the first verdict and a healthy jittery origin latched "degraded" (log-normal σ = 0.5
 *   at 5 responses/s: 87 % of the time); learning from a flood's queueing it widened the line it is
 *   part of (2 → 13 ms in the shedding bench). Simulated now (bench/origin-health-sim.ts), at
 *   5–200 responses/s and medians 2 ms–1 s: degraded ≤ 3 % of the time for σ ≤ 0.5, ≤ 30 % for
 *   σ = 0.8 (a mean feels so heavy a tail).
 * - Degraded (shedding applies): recent latency above tolerance × baseline + slack + allowance ×
 *   spread, or the error rate above its threshold — and for a hold time after, renewed while
 *   requests are still being shed, so a flood held back by shedding does not flap the route back
 *   to unshed. A healthy route is never shed, however many requests it carries. On turning
 *   degraded, the limit drops to at most the route's requests at the origin then: the concurrency
 *   at which the origin started to queue, so a flood is capped at once rather than after the limit
 *   has walked down.
 */

/** The baseline is the minimum over this long a window (kept as two halves, rotated). */
export const BASELINE_WINDOW_MS = 60_000;
/** The baseline's unit: the mean round-trip time of one bucket this long… */
export const BASELINE_BUCKET_MS = 1_000;
/** …of at least this many responses (before the first such bucket, the mean of all so far stands in). */
export const BASELINE_BUCKET_MIN_SAMPLES = 5;
/** Weight of a new response in the recent round-trip time (about the last 10 responses). */
export const RECENT_RTT_WEIGHT = 0.2;
/**
 * Recent latency up to this multiple of the baseline (plus the slack and the spread allowance) is
 * healthy. Also the limit's aim: 1.2 × + 10 ms let about one request queue at a struggling origin
 * (the fair-shedding bench's small tenants at 2.0–2.4 × their undisturbed p99); the spread term
 * carries the jitter, so the line can sit this close.
 */
export const LATENCY_TOLERANCE = 1.1;
/** Absolute slack on top of the tolerance, so loopback-fast origins do not flap on jitter. */
export const LATENCY_SLACK_MS = 5;
/** Weight of a new response's deviation from the recent latency in the spread (about the last 100 responses). */
export const SPREAD_WEIGHT = 0.01;
/**
 * The spread's start: the mean of the deviations seen so far, as if this many more had been 0 — it
 * learns a jittery origin within its first responses, yet one sudden slow response of a young
 * isolate does not widen the line past it.
 */
export const SPREAD_PRIOR_SAMPLES = 20;
/** Spreads added to the healthy line: the recent average's own wander, with room to spare. */
export const SPREAD_ALLOWANCE = 3;
/** Weight of a new response in the recent error rate (about the last 20 responses). */
export const ERROR_RATE_WEIGHT = 0.1;
/** A recent error rate above this is degraded. */
export const ERROR_RATE_DEGRADED = 0.25;
/** Responses seen before the route can be degraded at all (no verdict from a cold isolate). */
export const MIN_SAMPLES = 10;
/** A route stays degraded this long after its last degraded signal or shed request. */
export const DEGRADED_HOLD_MS = 5_000;
/** Weight of each response's target in the limit (smoothing). */
export const LIMIT_SMOOTHING = 0.2;
/** The limit moves at most once per this long, or per baseline round trip if longer. */
export const LIMIT_UPDATE_MS = 100;
/** Share of the limit kept after an error response. */
export const ERROR_BACKOFF = 0.9;
export const INITIAL_LIMIT = 20;
export const MIN_LIMIT = 4;
export const MAX_LIMIT = 1_000;

/** One origin response as the proxy saw it. */
export interface OriginSample {
  /** Milliseconds from the origin request to its response headers (or the failure). */
  rttMs: number;
  /** Origin 5xx, timeout or unreachable. */
  error: boolean;
}

export class OriginHealth {
  /** Requests of this route at the origin from this isolate. */
  inFlight = 0;
  /** The concurrency the origin takes before it queues, as learnt so far. */
  limit = INITIAL_LIMIT;
  samples = 0;
  recentRttMs = 0;
  /** Typical |response − recent|, ms (while degraded, learnt only with the origin lightly used). */
  spreadMs = 0;
  /** Responses the spread has learnt from. */
  private spreadSamples = 0;
  errorRate = 0;
  /** Lowest bucket mean of the current and the previous half window. */
  private currentMin = Number.POSITIVE_INFINITY;
  private previousMin = Number.POSITIVE_INFINITY;
  private halfStartedAt: number | null = null;
  /** The open bucket: its start, round-trip time sum and count. */
  private bucketStartedAt: number | null = null;
  private bucketSum = 0;
  private bucketCount = 0;
  private degradedUntil = 0;
  private limitUpdatedAt = Number.NEGATIVE_INFINITY;

  /** The no-queue latency: the lowest bucket mean over the last half to whole window. */
  get baselineRttMs(): number {
    const min = Math.min(this.currentMin, this.previousMin);
    if (min !== Number.POSITIVE_INFINITY) return min;
    return this.bucketCount > 0 ? this.bucketSum / this.bucketCount : Number.POSITIVE_INFINITY;
  }

  /** Whether the route's origin counts as degraded at `now` (shedding applies). */
  degraded(now: number): boolean {
    return now < this.degradedUntil;
  }

  /** A request was shed: the route is still under more demand than it takes. */
  noteShed(now: number): void {
    if (this.degraded(now)) this.degradedUntil = now + DEGRADED_HOLD_MS;
  }

  /** A request leaves for the origin. */
  begin(): void {
    this.inFlight++;
  }

  /** A request that `begin` counted is back; `sample` is its origin response, if it reached the origin. */
  end(sample: OriginSample | null, now: number): void {
    // Recorded while the request still counts: it was one of those at the origin.
    if (sample) this.record(sample, now);
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  private record(sample: OriginSample, now: number): void {
    this.samples++;
    this.errorRate += ERROR_RATE_WEIGHT * ((sample.error ? 1 : 0) - this.errorRate);
    if (!sample.error) {
      this.bucket(sample.rttMs, now);
      // While degraded, only a response that came back with the origin lightly used (in flight ≤
      // half the limit: no queue) teaches the spread — jitter, not a flood's queueing.
      if (this.recentRttMs !== 0 && (!this.degraded(now) || this.inFlight * 2 <= this.limit)) {
        this.spreadSamples++;
        const weight = Math.max(SPREAD_WEIGHT, 1 / (this.spreadSamples + SPREAD_PRIOR_SAMPLES));
        this.spreadMs += weight * (Math.abs(sample.rttMs - this.recentRttMs) - this.spreadMs);
      }
      this.recentRttMs =
        this.recentRttMs === 0
          ? sample.rttMs
          : this.recentRttMs + RECENT_RTT_WEIGHT * (sample.rttMs - this.recentRttMs);
    }
    if (now - this.limitUpdatedAt >= Math.max(LIMIT_UPDATE_MS, this.baselineRttMs)) {
      this.limitUpdatedAt = now;
      this.limit = sample.error ? this.backedOff() : this.moved();
    }
    if (this.samples < MIN_SAMPLES) return;
    if (this.recentRttMs > this.healthyRttMs() || this.errorRate > ERROR_RATE_DEGRADED) {
      if (!this.degraded(now)) this.limit = Math.max(MIN_LIMIT, Math.min(this.limit, this.inFlight));
      this.degradedUntil = now + DEGRADED_HOLD_MS;
    }
  }

  private backedOff(): number {
    return Math.max(MIN_LIMIT, this.limit * ERROR_BACKOFF);
  }

  /** The limit moved toward `limit × gradient` under a queue, `limit + √limit` while healthy and used; else held. */
  private moved(): number {
    const healthy = this.healthyRttMs();
    const gradient = Math.max(0.5, Math.min(1, healthy / this.recentRttMs));
    const used = this.inFlight * 2 >= this.limit;
    // The √limit queue allowance only while latency is in the lower half of the healthy band (as
    // TCP Vegas grows below α and shrinks above β): grown anywhere under the line, the limit
    // outpaced the gradient's gentle cuts and sat above it (recent 131 ms against a 123 ms line
    // in the shedding bench).
    const low = this.recentRttMs <= (this.baselineRttMs + healthy) / 2;
    const target =
      gradient < 1 ? this.limit * gradient : used && low ? this.limit + Math.sqrt(this.limit) : this.limit;
    return Math.min(MAX_LIMIT, Math.max(MIN_LIMIT, this.limit + LIMIT_SMOOTHING * (target - this.limit)));
  }

  /** The highest recent latency still healthy. */
  private healthyRttMs(): number {
    return this.baselineRttMs * LATENCY_TOLERANCE + LATENCY_SLACK_MS + SPREAD_ALLOWANCE * this.spreadMs;
  }

  /** Adds a response to the open bucket, closing it (into its half window's minimum) once it is old enough. */
  private bucket(rttMs: number, now: number): void {
    if (this.bucketStartedAt === null) this.bucketStartedAt = now;
    if (now - this.bucketStartedAt >= BASELINE_BUCKET_MS) {
      this.closeBucket(this.bucketStartedAt, now);
      this.bucketStartedAt = now;
      this.bucketSum = 0;
      this.bucketCount = 0;
    }
    this.bucketSum += rttMs;
    this.bucketCount++;
  }

  /** Rotates the halves up to `now`, then counts the bucket that started at `start` in the half it belongs to. */
  private closeBucket(start: number, now: number): void {
    const half = BASELINE_WINDOW_MS / 2;
    if (this.halfStartedAt === null) this.halfStartedAt = start;
    if (now - this.halfStartedAt >= 2 * half) {
      this.previousMin = Number.POSITIVE_INFINITY;
      this.currentMin = Number.POSITIVE_INFINITY;
      this.halfStartedAt = now;
    } else if (now - this.halfStartedAt >= half) {
      this.previousMin = this.currentMin;
      this.currentMin = Number.POSITIVE_INFINITY;
      this.halfStartedAt += half;
    }
    if (this.bucketCount < BASELINE_BUCKET_MIN_SAMPLES) return;
    const mean = this.bucketSum / this.bucketCount;
    if (start >= this.halfStartedAt) this.currentMin = Math.min(this.currentMin, mean);
    else if (start >= this.halfStartedAt - half) this.previousMin = Math.min(this.previousMin, mean);
  }
}
