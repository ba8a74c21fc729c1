/**
 * A controlled clock for tests of expiry, rotation grace, quota windows and Retry-After.
 *
 * In `@cloudflare/vitest-pool-workers` 0.15 the test, the Worker it calls through
 * `exports.default.fetch` and the tenant Durable Object all run in one isolate, so
 * `vi.setSystemTime` (without fake timers) replaces the one global `Date` they all read:
 * production keeps calling `Date.now()` / `new Date()`, unchanged. The clock is frozen at the set
 * instant until the next `set`/`advance`; timers (`setTimeout`, the usage batcher's flush) stay
 * real. What runs outside the isolate keeps the real clock: KV (absolute `expiration`), Postgres
 * `now()`, the Node services of global-setup.ts.
 *
 * Move the clock forward only, from an instant not before the real now: KV refuses an
 * `expiration` in its real past, and the tenant object keeps the key record with the newest
 * version (the time of the change), so a clock moved back would make a later change look older.
 */
import { afterEach, vi } from "vitest";

export interface Clock {
  /** Sets the clock to an instant (epoch ms or ISO string) and returns it in epoch ms. */
  set(at: number | string): number;
  /** Moves the clock forward by `ms` and returns the new instant. */
  advance(ms: number): number;
}

/** A clock for the tests of the calling file, back to the real one after each test. */
export function controlledClock(): Clock {
  afterEach(() => {
    vi.useRealTimers();
  });
  const set = (at: number | string) => {
    const ms = typeof at === "string" ? Date.parse(at) : at;
    if (Number.isNaN(ms)) throw new Error(`not an instant: ${at}`);
    vi.setSystemTime(ms);
    return ms;
  };
  return { set, advance: (ms) => set(Date.now() + ms) };
}
