/**
 * `npm run bench -- --soak[=minutes]`: does memory stay flat under steady load? The gateway and the
 * pass-through Worker are loaded side by side (two wrk, half the connections each, same duration,
 * bounded by -d), and the resident memory of each one's process tree is sampled every 10 s, split into
 * `workerd` (the runtime running the Worker: where a leak in the Worker's code would show) and `node`
 * (the Miniflare host process, which for the gateway also runs the Postgres bridge). Growth is measured
 * from the end of the warm-up to the end of the load; the pass-through is the runtime's own baseline.
 */
import type { IsolateHeap } from "./heap";
import { treeRssMiB } from "./memory";
import type { WrkResult } from "./wrk";

export interface RssSample {
  /** seconds since the soak started */
  atS: number;
  gateway: Record<string, number>;
  passthrough: Record<string, number>;
}

export interface SoakSide {
  requests: number;
  rps: number;
  errors: number;
  /** RSS (MiB) per command name after the warm-up, and at the end of the load */
  warm: Record<string, number>;
  end: Record<string, number>;
  /** workerd RSS growth from warm to end */
  workerdGrowthMiB: number;
  workerdGrowthPct: number;
  /**
   * workerd growth from warm to end along the least-squares line through every sample after the
   * warm-up, % of the line's value at warm: two single samples swing by ±20 % on their own (a
   * sample can land on a collection or a burst of allocation), the line through 37 of them does not.
   */
  workerdTrendPct: number;
  /** workerd growth per request served after the warm-up, KiB */
  workerdKiBPerRequest: number;
  /** growth of workerd's anonymous memory (heaps), and of the pages it maps (storage files), MiB */
  anonGrowthMiB: number;
  mappedGrowthMiB: number;
}

export interface SoakResult {
  startedAt: string;
  minutes: number;
  warmupS: number;
  connectionsEach: number;
  gateway: SoakSide;
  passthrough: SoakSide;
  /** gateway workerd trend growth % − pass-through workerd trend growth % (goal ≤ 10) */
  excessGrowthPct: number;
  usage: { proxied: number; rows: number; pass: boolean };
  /** each workerd's isolate heaps after a full GC, at the end of the warm-up and at the end */
  heaps: Record<"warm" | "end", Record<"gateway" | "passthrough", IsolateHeap[]>>;
  samples: RssSample[];
}

/** Samples both trees every `everyMs` until stopped. */
export function sampleRss(gatewayPid: number, passthroughPid: number, everyMs = 10_000) {
  const started = Date.now();
  const samples: RssSample[] = [];
  const take = () =>
    samples.push({
      atS: (Date.now() - started) / 1000,
      gateway: treeRssMiB(gatewayPid),
      passthrough: treeRssMiB(passthroughPid),
    });
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
    },
  };
}

/** One side's numbers from the samples: warm = first sample at or after the warm-up. */
export function soakSide(
  samples: RssSample[],
  side: "gateway" | "passthrough",
  warmupS: number,
  wrk: WrkResult,
): SoakSide {
  const warmSample = samples.find((s) => s.atS >= warmupS) ?? samples[0];
  const endSample = samples.at(-1);
  const warm = warmSample?.[side] ?? {};
  const end = endSample?.[side] ?? {};
  const growth = (end.workerd ?? 0) - (warm.workerd ?? 0);
  const totalS = endSample?.atS ?? 0;
  const afterWarm = wrk.requests * Math.max(0, (totalS - (warmSample?.atS ?? 0)) / Math.max(1, totalS));
  return {
    requests: wrk.requests,
    rps: wrk.rps,
    errors: wrk.errorTotal,
    warm,
    end,
    workerdGrowthMiB: growth,
    workerdGrowthPct: warm.workerd ? (growth / warm.workerd) * 100 : Number.NaN,
    workerdTrendPct: trendGrowthPct(
      samples.filter((s) => s.atS >= warmupS).map((s) => [s.atS, s[side].workerd ?? 0]),
    ),
    workerdKiBPerRequest: afterWarm > 0 ? (growth * 1024) / afterWarm : Number.NaN,
    anonGrowthMiB: (end["workerd:anon"] ?? 0) - (warm["workerd:anon"] ?? 0),
    mappedGrowthMiB: (end["workerd:mapped"] ?? 0) - (warm["workerd:mapped"] ?? 0),
  };
}

/** Growth along the least-squares line through `points` ([s, MiB]), first to last, % of its first value. */
export function trendGrowthPct(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const meanT = points.reduce((a, [t]) => a + t, 0) / n;
  const meanV = points.reduce((a, [, v]) => a + v, 0) / n;
  const slope =
    points.reduce((a, [t, v]) => a + (t - meanT) * (v - meanV), 0) /
    points.reduce((a, [t]) => a + (t - meanT) ** 2, 0);
  const at = (t: number) => meanV + slope * (t - meanT);
  const first = at(points[0]?.[0] ?? 0);
  return ((at(points[n - 1]?.[0] ?? 0) - first) / first) * 100;
}
