/**
 * The fair-shedding scenario (README "Fair shedding", docs/BENCHMARKS.md): an origin slowed 10×
 * with a bounded capacity (bench/origin.ts in its slow mode: a fixed service time and a concurrency
 * cap with a FIFO queue behind it), several small tenants at a fixed open-loop rate each, and one
 * tenant flooding at 20× that rate — more than the origin can serve, so without shedding its queue
 * grows for as long as the flood lasts.
 *
 * Three runs, each after a warm-up of the small tenants alone (the route learns its baseline):
 *   undisturbed — the small tenants only, gateway with SHEDDING=on;
 *   flood, SHEDDING=off — a second gateway (its own workerd) with shedding switched off;
 *   flood, SHEDDING=on.
 * Reported: the small tenants' success rate (200s) and latency (p50/p99 of their 200s, measured from
 * each request's scheduled send time, so a late send counts), and the flooder's admitted and shed
 * counts. Targets: with shedding, small tenants ≥ 99 % success and p99 ≤ 2× the undisturbed run.
 *
 * The load is open-loop (requests leave on a fixed schedule whatever the answers, as independent
 * clients do), from this Node process over keep-alive connections; bounded in time (each run's
 * duration, then at most the client timeout to collect stragglers) and in count (rate × duration,
 * at most MAX_IN_FLIGHT outstanding — beyond that a send counts as failed).
 */
import { Agent, request } from "node:http";
import { fmt, fmtMs, percentile } from "./stats";

export interface SheddingConfig {
  smallTenants: number;
  /** Requests per second of each small tenant. */
  smallRate: number;
  /** The flooder's rate is this many times a small tenant's. */
  floodFactor: number;
  durationS: number;
  warmupS: number;
  /** The slow origin: service time of each request and how many it serves at once. */
  originDelayMs: number;
  originConcurrency: number;
  /** The route's origin timeout (a request queued longer gets 504). */
  routeTimeoutMs: number;
}

/**
 * Rates sized so the gateway itself is far from saturated on the bench's 2 shared cores (~1,000
 * req/s there): the bottleneck must be the origin, or the scenario measures the gateway's CPU queue.
 */
export const sheddingConfig = (quick: boolean): SheddingConfig => ({
  smallTenants: 4,
  smallRate: 2.5,
  floodFactor: 20,
  durationS: quick ? 10 : 30,
  warmupS: quick ? 3 : 5,
  originDelayMs: 100,
  originConcurrency: 4,
  routeTimeoutMs: 5_000,
});

/** One tenant's side of a run. */
export interface TenantLoad {
  sent: number;
  ok: number;
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
}

export interface SheddingRun {
  name: "undisturbed" | "flood, SHEDDING=off" | "flood, SHEDDING=on";
  /** The small tenants together. */
  small: TenantLoad & { successRate: number };
  flooder: TenantLoad | null;
}

export interface SheddingResult {
  config: SheddingConfig;
  runs: SheddingRun[];
  /** With shedding: small tenants' success ≥ 99 %, and their p99 ≤ 2× the undisturbed p99. */
  targets: { success: boolean; p99: boolean; p99Ratio: number };
}

/** A gateway in front of the slow origin, with `SHEDDING` as given. */
export interface ScenarioGateway {
  url: string;
  stop(): Promise<void>;
}

const MAX_IN_FLIGHT = 5_000;
const CLIENT_TIMEOUT_MS = 15_000;
const ROUTE = "/slow/";

interface Sample {
  status: number;
  latencyMs: number;
}

/** Fires `rate` requests per second for `durationS` at `url` with `key`, on a fixed schedule. */
async function openLoop(
  agent: Agent,
  url: string,
  key: string,
  rate: number,
  durationS: number,
  inFlight: { n: number },
): Promise<Sample[]> {
  const total = Math.round(rate * durationS);
  const intervalMs = 1000 / rate;
  const start = performance.now() + Math.random() * intervalMs;
  const samples: Promise<Sample>[] = [];
  for (let i = 0; i < total; i++) {
    const at = start + i * intervalMs;
    const wait = at - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (inFlight.n >= MAX_IN_FLIGHT) {
      samples.push(Promise.resolve({ status: 0, latencyMs: Number.NaN }));
      continue;
    }
    inFlight.n++;
    samples.push(
      new Promise<Sample>((resolve) => {
        const done = (status: number) => {
          inFlight.n--;
          resolve({ status, latencyMs: performance.now() - at });
        };
        const req = request(
          `${url}${ROUTE}t/${i}`,
          { agent, headers: { authorization: `Bearer ${key}` }, timeout: CLIENT_TIMEOUT_MS },
          (res) => {
            res.resume();
            res.on("end", () => done(res.statusCode ?? 0));
            res.on("error", () => done(0));
          },
        );
        req.on("timeout", () => req.destroy(new Error("client timeout")));
        req.on("error", () => done(0));
        req.end();
      }),
    );
  }
  return Promise.all(samples);
}

function summarizeLoad(samples: Sample[]): TenantLoad {
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
  const ok = samples.filter((s) => s.status === 200).map((s) => s.latencyMs);
  return {
    sent: samples.length,
    ok: ok.length,
    statuses,
    p50Ms: percentile(ok, 50),
    p99Ms: percentile(ok, 99),
  };
}

/** Seeds the scenario's tenants on a gateway (one plan without limits that matter here). */
async function seed(gateway: string, adminToken: string, count: number, tag: string) {
  const post = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${gateway}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`shedding seed: POST ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  };
  const plan = await post<{ id: string }>("/admin/v1/plans", {
    name: `bench-shed-${tag}`,
    burstCapacity: 1_000_000_000,
    refillTokens: 1_000_000_000,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const t = await post<{ key: { key: string } }>("/admin/v1/tenants", {
      slug: `bench-shed-${tag}-${i}`,
      name: `Bench shed ${tag} ${i}`,
      planId: plan.id,
    });
    keys.push(t.key.key);
  }
  return keys;
}

/** One run: the small tenants (and the flooder, if any) at their rates for the run's duration. */
async function runLoad(
  agent: Agent,
  gateway: string,
  keys: { small: string[]; flooder: string | null },
  cfg: SheddingConfig,
  durationS: number,
) {
  const inFlight = { n: 0 };
  const [small, flooder] = await Promise.all([
    Promise.all(keys.small.map((k) => openLoop(agent, gateway, k, cfg.smallRate, durationS, inFlight))),
    keys.flooder
      ? openLoop(agent, gateway, keys.flooder, cfg.smallRate * cfg.floodFactor, durationS, inFlight)
      : Promise.resolve(null),
  ]);
  return { small: summarizeLoad(small.flat()), flooder: flooder ? summarizeLoad(flooder) : null };
}

/** The vars of a scenario gateway: one route to the slow origin, and the shedding switch. */
export function scenarioVars(originUrl: string, cfg: SheddingConfig, shedding: "on" | "off") {
  return {
    ORIGIN_URL: originUrl,
    SANDBOX_ORIGIN_URL: originUrl,
    ROUTES: JSON.stringify([
      { prefix: ROUTE, cost: 1, billable: true, entitlement: "api", timeoutMs: cfg.routeTimeoutMs },
    ]),
    SHEDDING: shedding,
  };
}

/**
 * Runs the scenario: `startGateway(shedding)` starts a gateway in front of the slow origin (the
 * caller owns processes and their cleanup); the gateway with shedding on serves the undisturbed and
 * the shedding runs, a second one the run without.
 */
export async function sheddingScenario(o: {
  cfg: SheddingConfig;
  adminToken: string;
  startGateway(shedding: "on" | "off"): Promise<ScenarioGateway>;
  log(message: string): void;
}): Promise<SheddingResult> {
  const { cfg } = o;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const runs: SheddingRun[] = [];
  const record = (name: SheddingRun["name"], r: Awaited<ReturnType<typeof runLoad>>) => {
    const run: SheddingRun = {
      name,
      small: { ...r.small, successRate: r.small.ok / Math.max(1, r.small.sent) },
      flooder: r.flooder,
    };
    runs.push(run);
    o.log(`  ${name}: ${describeRun(run)}`);
  };
  try {
    for (const shedding of ["on", "off"] as const) {
      const gateway = await o.startGateway(shedding);
      try {
        const keys = await seed(gateway.url, o.adminToken, cfg.smallTenants + 1, shedding);
        const small = keys.slice(0, cfg.smallTenants);
        const flooder = keys[cfg.smallTenants] as string;
        // Warm-up: keys cached, the route's baseline learnt from the small tenants' traffic.
        await runLoad(agent, gateway.url, { small, flooder: null }, cfg, cfg.warmupS);
        if (shedding === "on")
          record(
            "undisturbed",
            await runLoad(agent, gateway.url, { small, flooder: null }, cfg, cfg.durationS),
          );
        record(
          `flood, SHEDDING=${shedding}`,
          await runLoad(agent, gateway.url, { small, flooder }, cfg, cfg.durationS),
        );
      } finally {
        await gateway.stop();
      }
    }
  } finally {
    agent.destroy();
  }
  const base = runs.find((r) => r.name === "undisturbed");
  const shed = runs.find((r) => r.name === "flood, SHEDDING=on");
  const p99Ratio = (shed?.small.p99Ms ?? Number.NaN) / (base?.small.p99Ms ?? Number.NaN);
  return {
    config: cfg,
    runs: ["undisturbed", "flood, SHEDDING=off", "flood, SHEDDING=on"].map(
      (name) => runs.find((r) => r.name === name) as SheddingRun,
    ),
    targets: { success: (shed?.small.successRate ?? 0) >= 0.99, p99: p99Ratio <= 2, p99Ratio },
  };
}

const statusList = (statuses: Record<string, number>) =>
  Object.entries(statuses)
    .map(([s, n]) => `${s === "0" ? "failed" : s} ${fmt(n)}`)
    .join(", ");

function describeRun(r: SheddingRun): string {
  const small = `small tenants ${fmt(r.small.successRate * 100, 1)} % ok, p50 ${fmtMs(r.small.p50Ms)} ms, p99 ${fmtMs(r.small.p99Ms)} ms`;
  const flooder = r.flooder ? `; flooder ${statusList(r.flooder.statuses)}` : "";
  return small + flooder;
}

/** The scenario's section of docs/BENCHMARKS.md. */
export function renderShedding(r: SheddingResult): string {
  const c = r.config;
  const out = [
    "### Fair shedding: a slowed origin and one flooding tenant",
    "",
    `Origin: ${c.originDelayMs} ms per request, ${c.originConcurrency} at once (≈ ${fmt((c.originConcurrency * 1000) / c.originDelayMs)} req/s), ` +
      `FIFO queue behind; route timeout ${fmt(c.routeTimeoutMs)} ms. ${c.smallTenants} small tenants at ${c.smallRate} req/s each, ` +
      `one flooder at ${c.floodFactor}× (${fmt(c.smallRate * c.floodFactor)} req/s), open loop, ${c.durationS} s per run after a ` +
      `${c.warmupS} s warm-up. Latency from each request's scheduled send, over its 200s.`,
    "",
    "| Run | small: success | small: p50 ms | small: p99 ms | flooder: answers |",
    "| --- | --: | --: | --: | --- |",
  ];
  for (const run of r.runs)
    out.push(
      `| ${run.name} | ${fmt(run.small.successRate * 100, 2)} % | ${fmtMs(run.small.p50Ms)} | ${fmtMs(run.small.p99Ms)} | ` +
        `${run.flooder ? statusList(run.flooder.statuses) : "–"} |`,
    );
  out.push(
    "",
    `Targets with shedding: small tenants ≥ 99 % success — ${r.targets.success ? "met" : "**missed**"}; ` +
      `p99 ≤ 2× undisturbed — ${fmt(r.targets.p99Ratio, 2)}× ${r.targets.p99 ? "met" : "**missed**"}.`,
  );
  return out.join("\n");
}
