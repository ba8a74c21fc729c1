/**
 * The clock the Stripe stand-in runs on: real time (or the `now` it was given) plus an offset that
 * only grows, moved by `POST /_standin/clock/advance`, so that a test or a demo can reach a
 * billing period's end, or the next payment retry, without waiting for it. Like a Stripe test clock,
 * it moves forward only; `reset` (between tests) goes back to the underlying time.
 */

export interface StandInClock {
  /** Milliseconds since the epoch, on the stand-in's clock. */
  nowMs(): number;
  /** Moves the clock forward by `seconds` (a non-negative integer); returns the new now in seconds. */
  advance(seconds: number): number;
  /** Moves the clock forward to `epochSeconds` (not before now); returns it. */
  advanceTo(epochSeconds: number): number;
  /** Back to the underlying time. */
  reset(): void;
}

export function standInClock(underlying: () => number): StandInClock {
  let offsetMs = 0;
  const nowMs = () => underlying() + offsetMs;
  const nowS = () => Math.floor(nowMs() / 1000);
  return {
    nowMs,
    advance(seconds) {
      if (!Number.isSafeInteger(seconds) || seconds < 0)
        throw new RangeError(`seconds must be a non-negative integer, not ${JSON.stringify(seconds)}`);
      offsetMs += seconds * 1000;
      return nowS();
    },
    advanceTo(epochSeconds) {
      if (!Number.isSafeInteger(epochSeconds))
        throw new RangeError(`to must be an integer (epoch seconds), not ${JSON.stringify(epochSeconds)}`);
      const now = nowMs();
      if (epochSeconds * 1000 < now - 999)
        throw new RangeError(`the clock only moves forward: ${epochSeconds} is before now (${nowS()})`);
      offsetMs += Math.max(0, epochSeconds * 1000 - now);
      return nowS();
    },
    reset() {
      offsetMs = 0;
    },
  };
}

/** `n` calendar months after `t` (UTC, seconds), clamped to the month's last day, as Stripe bills monthly. */
export function monthsAfter(t: number, n: number): number {
  const d = new Date(t * 1000);
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  target.setUTCHours(d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
  return Math.floor(target.getTime() / 1000);
}
