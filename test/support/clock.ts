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
 * Within a test, move the clock forward only: tenant configs and key records are versioned by the
 * millisecond of the change and the tenant object keeps the newest, so a change made after the
 * clock moved back looks older and is ignored; a plan or tenant change in the same millisecond as
 * the previous one is ignored too (advance the clock before it, as real time would have).
 * A test that gives a key an end (expiry, rotation, revocation) starts from the real now: KV
 * refuses an absolute `expiration` in its real past. Quota tests may use any fixed instant.
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
