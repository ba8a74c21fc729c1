/**
 * Runs before every test file and every test (vitest `setupFiles`): the services global-setup.ts
 * starts are shared by the whole run, so whatever one test injected must not reach the next one,
 * whatever the order (`--sequence.shuffle`) or selection (`-t`, one file alone).
 * - Before a file's tests: the Worker's modules are loaded, once per run (`isolate: false` keeps
 *   them), in a hook with its own 2-minute timeout — so the first test of a run does not spend its
 *   `testTimeout` on loading the whole bundle (~3.5 s on a quiet 2-core machine, 10–20 s on a busy one).
 * - Before each test: the Stripe stand-in forgets pending injected faults and latency, and its clock
 *   and payment retry rules go back to their defaults (its data stays: isolates cache meter ids,
 *   and every test works on its own customers).
 */
import { beforeAll, beforeEach, inject } from "vitest";

beforeAll(async () => {
  await import("../workers/index");
}, 120_000);

beforeEach(async () => {
  const res = await fetch(`${inject("stripeUrl")}/__control/reset-faults`, { method: "POST" });
  if (!res.ok) throw new Error(`Stripe stand-in reset-faults answered ${res.status}: ${await res.text()}`);
});
