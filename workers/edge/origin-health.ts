/**
 * A route's origin health, learnt from the responses this isolate sees: a gradient concurrency
 * limiter in the style of Netflix's `Gradient2Limit` and Envoy's adaptive concurrency filter. Pure
 * (the caller passes the clock), isolate-local, a few numbers per route; workers/edge/shed.ts reads
 * it to decide when to shed and how much concurrency there is to share.
 *
 * - Baseline: the lowest round-trip time (to the origin's response headers) over a long window,
 *   the origin's latency without a queue.
 * - Recent: a moving average of the last responses' round-trip times and of their error rate
 *   (origin 5xx, timeouts, unreachable).
 * - Limit: the concurrency the origin takes before it queues. Each response moves it toward
 *   `limit × gradient + √limit`, where gradient = (tolerance × baseline + slack) / recent, clamped to
 *   [½, 1]: it grows while latency stays near the baseline (and the route uses at least half of
 *   it), and shrinks as a queue builds; each error takes off 10 %.
 * - Degraded: recent latency above tolerance × baseline + slack, or the error rate above its
 *   threshold — and for a hold time after, renewed while requests are still being shed, so a flood
 *   held back by shedding does not flap the route back to unshed.
 */

/** The baseline is the minimum over this long a window (kept as two halves, rotated). */
export const BASELINE_WINDOW_MS = 60_000;
/** Weight of a new response in the recent round-trip time (about the last 10 responses). */
export const RECENT_RTT_WEIGHT = 0.2;
/** Recent latency up to this multiple of the baseline (plus the slack) is healthy. */
export const LATENCY_TOLERANCE = 2;
/** Absolute slack on top of the tolerance, so loopback-fast origins do not flap on jitter. */
export const LATENCY_SLACK_MS = 25;
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
  errorRate = 0;
  /** Minimum round-trip time of the current and the previous half window. */
  private currentMin = Number.POSITIVE_INFINITY;
  private previousMin = Number.POSITIVE_INFINITY;
  private halfStartedAt: number | null = null;
  private degradedUntil = 0;

  /** The no-queue latency: the lowest round-trip time over the last half to whole window. */
  get baselineRttMs(): number {
    return Math.min(this.currentMin, this.previousMin);
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
    if (sample.error) {
      this.limit = Math.max(MIN_LIMIT, this.limit * ERROR_BACKOFF);
    } else {
      this.rotate(now);
      this.currentMin = Math.min(this.currentMin, sample.rttMs);
      this.recentRttMs =
        this.recentRttMs === 0
          ? sample.rttMs
          : this.recentRttMs + RECENT_RTT_WEIGHT * (sample.rttMs - this.recentRttMs);
      const gradient = Math.max(0.5, Math.min(1, this.healthyRttMs() / this.recentRttMs));
      // Grow only when the route uses the limit: an idle route's limit says nothing of the origin.
      const used = this.inFlight * 2 >= this.limit;
      const target = gradient < 1 || used ? this.limit * gradient + Math.sqrt(this.limit) : this.limit;
      this.limit = Math.min(
        MAX_LIMIT,
        Math.max(MIN_LIMIT, this.limit + LIMIT_SMOOTHING * (target - this.limit)),
      );
    }
    if (this.samples < MIN_SAMPLES) return;
    if (this.recentRttMs > this.healthyRttMs() || this.errorRate > ERROR_RATE_DEGRADED)
      this.degradedUntil = now + DEGRADED_HOLD_MS;
  }

  /** The highest recent latency still healthy. */
  private healthyRttMs(): number {
    return this.baselineRttMs * LATENCY_TOLERANCE + LATENCY_SLACK_MS;
  }

  private rotate(now: number): void {
    if (this.halfStartedAt === null) this.halfStartedAt = now;
    if (now - this.halfStartedAt < BASELINE_WINDOW_MS / 2) return;
    this.previousMin = this.currentMin;
    this.currentMin = Number.POSITIVE_INFINITY;
    this.halfStartedAt = now;
  }
}
