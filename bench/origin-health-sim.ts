/**
 * The jitter study behind workers/edge/origin-health.ts's constants (README "Fair shedding"):
 * drives `OriginHealth` with log-normal response times, no runtime and no network, and prints
 *   1. the share of the time a *healthy* origin is judged degraded (worst of 5 seeds, 10 minutes
 *      each) over rates of 5, 20 and 200 responses/s, medians of 2 ms–1 s and σ of 0.2–1.0;
 *   2. how long a 2×, 3× or 10× slowdown after 2 healthy minutes takes to be caught (worst of 5).
 * `npx tsx bench/origin-health-sim.ts` (about 10 s). Seeded: the same numbers on every run.
 */
import { OriginHealth } from "../workers/edge/origin-health";
import { logNormal, seeded } from "./lib/seeded";

interface Run {
  perSecond: number;
  medianMs: number;
  sigma: number;
  seconds: number;
  seed: number;
  /** From this time on, every response is `factor` × slower. */
  slowFrom?: number;
  factor?: number;
}

/** Share of the healthy time judged degraded, and how long after `slowFrom` the first verdict came. */
function run(o: Run): { degradedShare: number; caughtAfterMs: number | null } {
  const health = new OriginHealth();
  const random = seeded(o.seed);
  let now = 0;
  let healthy = 0;
  let degraded = 0;
  let caughtAfterMs: number | null = null;
  for (let i = 0; i < o.seconds * o.perSecond; i++) {
    now += 1_000 / o.perSecond;
    const slow = o.slowFrom !== undefined && now >= o.slowFrom;
    health.begin();
    health.end(
      { rttMs: (slow ? (o.factor ?? 1) : 1) * logNormal(random, o.medianMs, o.sigma), error: false },
      now,
    );
    if (!slow) {
      healthy++;
      if (health.degraded(now)) degraded++;
    } else if (caughtAfterMs === null && health.degraded(now)) caughtAfterMs = now - (o.slowFrom as number);
  }
  return { degradedShare: degraded / Math.max(1, healthy), caughtAfterMs };
}

const SEEDS = [1, 2, 3, 4, 5];
const pct = (x: number) => `${(x * 100).toFixed(1)} %`.padStart(8);

console.log("Healthy origin judged degraded (worst of 5 seeds, 10 minutes each)");
const SIGMAS = [0.2, 0.3, 0.5, 0.8, 1.0];
console.log(`${"responses/s, median".padEnd(22)}${SIGMAS.map((s) => `σ ${s}`.padStart(8)).join("")}`);
for (const perSecond of [5, 20, 200])
  for (const medianMs of [2, 20, 100, 1_000]) {
    const cells = SIGMAS.map((sigma) =>
      Math.max(...SEEDS.map((seed) => run({ perSecond, medianMs, sigma, seconds: 600, seed }).degradedShare)),
    );
    console.log(`${`${perSecond}/s, ${medianMs} ms`.padEnd(22)}${cells.map(pct).join("")}`);
  }

console.log("\nA slowdown after 2 healthy minutes: caught after (worst of 5 seeds; 20 s watched)");
for (const perSecond of [5, 20, 200])
  for (const sigma of [0, 0.3])
    for (const factor of [2, 3, 10]) {
      const times = SEEDS.map(
        (seed) =>
          run({ perSecond, medianMs: 100, sigma, seconds: 140, seed, slowFrom: 120_000, factor })
            .caughtAfterMs,
      );
      const worst = times.includes(null) ? "not caught" : `${Math.max(...(times as number[]))} ms`;
      console.log(`${perSecond}/s, 100 ms, σ ${sigma}, ${factor}× slower: ${worst}`);
    }
