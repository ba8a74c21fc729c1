/**
 * Runs before every test of every file (vitest `setupFiles`): the services global-setup.ts starts
 * are shared by the whole run, so whatever one test injected must not reach the next one, whatever
 * the order (`--sequence.shuffle`) or selection (`-t`, one file alone).
 * - The Stripe stand-in forgets pending injected faults and latency, and its clock and payment retry
 *   rules go back to their defaults (its data stays: isolates cache meter ids, and every test works
 *   on its own customers).
 */
import { beforeEach, inject } from "vitest";

beforeEach(async () => {
  const res = await fetch(`${inject("stripeUrl")}/__control/reset-faults`, { method: "POST" });
  if (!res.ok) throw new Error(`Stripe stand-in reset-faults answered ${res.status}: ${await res.text()}`);
});
