/**
 * `npm run bench`: the gateway against its floor and a C baseline, on loopback, in one command.
 *
 * Cases, all in front of the same origin (bench/origin.ts, a tiny Node server):
 *   (a) origin direct · (b) pass-through Worker on workerd · (b2) the same plus one SQLite-backed
 *   Durable Object RPC per request (the floor of an exact limiter) · (b3) (b) plus the gateway's own
 *   usage hand-off per request (bench/metering-floor-worker.ts: the floor of DESIGN's metering, and of a
 *   leased tenant) · (b4) (b2) plus the same hand-off (the floor of a default-mode tenant) · (c) the
 *   real gateway Worker on
 *   workerd (key auth + tenant Durable Object admission + proxy + usage event → queue → Postgres) ·
 *   (d) nginx with a key map, limit_req and proxy_pass.
 * Load: wrk, fixed threads and connections, every run bounded by -d, a warm-up per case, cases
 * interleaved a,b,b2,b3,b4,c,d,a,b,… for several rounds, medians reported. CPU per request from /proc.
 * Then: a CPU profile of the gateway's request path by step (bench/lib/profile.ts), exact limits under
 * load (token bucket and daily quota), usage rows = admitted, queue messages per proxied request, the
 * leased tenant (bench/lib/leased.ts), the fair-shedding scenario (bench/lib/shedding.ts: a slowed
 * origin, one tenant flooding at 20× the others' rate, with and without shedding), a fault case (the
 * usage queue refuses sends for a while, then recovers: every
 * event must still land, reconciliation zero-diff), and metering throughput and lag. The run FAILS
 * (exit 1) unless usage rows = proxied requests for all of its load. Writes bench/results/latest.json
 * and the tables into docs/BENCHMARKS.md.
 *
 * Options (flags or env): --rounds N (BENCH_ROUNDS, 4) --duration S (10) --warmup S (2)
 * --connections C (32) --threads T (2) --unloaded S (4; 0 = skip the 1-connection runs)
 * --limit N (200) --synthetic K (50000; 0 = skip) --fault S (4; 0 = skip) --profile S (8) --do-storage tmpfs|disk
 * (tmpfs) --audit-batch N (5000; 0 = skip: the request audit log's cost per consumer batch,
 * bench/lib/audit-batch.ts) --quick
 * --soak[=minutes] (10): instead of the rounds, load the gateway and the pass-through side by side for
 * that long and report workerd's memory after warm-up and at the end (bench/lib/soak.ts).
 * --report-only: re-render docs/BENCHMARKS.md from bench/results/latest.json, run nothing.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { auditBatchTimes } from "./lib/audit-batch";
import { CLK_TCK, machineTicks, procTable, selfTicks, treeTicks, treeTicksByCommand } from "./lib/cpu";
import { type BenchDatabase, openBenchDatabase } from "./lib/database";
import { isolateHeaps } from "./lib/heap";
import { leasedCase } from "./lib/leased";
import { rowTimings, SnapshotPoller, waitForRows } from "./lib/metering";
import { startNginx } from "./lib/nginx";
import { run, type Server, startServer } from "./lib/processes";
import { profileGateway } from "./lib/profile";
import { renderMarkdown, renderSoak, SOAK_BEGIN, SOAK_END, writeIntoDoc } from "./lib/report";
import { type SheddingResult, scenarioVars, sheddingConfig, sheddingScenario } from "./lib/shedding";
import { type SoakResult, sampleRss, soakSide } from "./lib/soak";
import { fmt, fmtDuration, fmtMs, max, median, min, percentile } from "./lib/stats";
import type {
  BenchResults,
  CaseId,
  CaseSummary,
  ConsumerStats,
  CorrectnessResult,
  CpuSample,
  FaultResult,
  LagStats,
  MeteringResult,
  Ratios,
  RunResult,
} from "./lib/types";
import { runWrk, type WrkResult, writeLuaScripts } from "./lib/wrk";
import type { QueueStats, WorkersServerConfig } from "./workers-server";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Usage-queue batches the gateway's consumer handled, as Miniflare's broker timed them. */
interface QueueBatch {
  queue: string;
  acked: number;
  total: number;
  ms: number;
  at: number;
}
const queueBatches: QueueBatch[] = [];
const RESULTS_DIR = `${ROOT}bench/results`;
const HEAP_DIR = `${RESULTS_DIR}/heap`;
const DOC = `${ROOT}docs/BENCHMARKS.md`;
const ADMIN_TOKEN = "bench-admin-token";
const T0 = Date.now();

// ---------------------------------------------------------------------------------------- options

// `--soak` takes an optional value (`--soak=5`), which parseArgs cannot express: taken out first.
const soakArg = process.argv.slice(2).find((a) => /^--soak(=[\d.]+)?$/.test(a));
const SOAK_MINUTES = soakArg ? Number(soakArg.split("=")[1] ?? 10) : 0;
const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== soakArg),
  options: {
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string" },
    threads: { type: "string" },
    unloaded: { type: "string" },
    limit: { type: "string" },
    synthetic: { type: "string" },
    fault: { type: "string" },
    "audit-batch": { type: "string" },
    "do-storage": { type: "string" },
    quick: { type: "boolean" },
    profile: { type: "string" },
    "report-only": { type: "boolean" },
  },
});
const quick = flags.quick ?? process.env.BENCH_QUICK === "1";
const num = (flag: string | undefined, env: string, dflt: number) => Number(flag ?? process.env[env] ?? dflt);
const CFG = {
  rounds: num(flags.rounds, "BENCH_ROUNDS", quick ? 1 : 4),
  durationS: num(flags.duration, "BENCH_DURATION", quick ? 3 : 10),
  warmupS: num(flags.warmup, "BENCH_WARMUP", quick ? 1 : 2),
  connections: num(flags.connections, "BENCH_CONNECTIONS", 32),
  threads: num(flags.threads, "BENCH_THREADS", 2),
  unloadedDurationS: num(flags.unloaded, "BENCH_UNLOADED", quick ? 2 : 4),
  limit: num(flags.limit, "BENCH_LIMIT", 200),
  syntheticEvents: num(flags.synthetic, "BENCH_SYNTHETIC", quick ? 10_000 : 50_000),
  faultS: num(flags.fault, "BENCH_FAULT", quick ? 2 : 4),
  profileS: num(flags.profile, "BENCH_PROFILE", quick ? 3 : 8),
  auditBatchEvents: num(flags["audit-batch"], "BENCH_AUDIT_BATCH", quick ? 1_000 : 5_000),
  doStorage: flags["do-storage"] ?? process.env.BENCH_DO_STORAGE ?? "tmpfs",
  shedding: process.env.BENCH_SHEDDING !== "0",
};
const SHEDDING = sheddingConfig(quick);
const CORRECTNESS_S = quick ? 3 : 5;

const CASES: Array<{ id: CaseId; label: string }> = [
  { id: "origin", label: "(a) origin direct (Node http)" },
  { id: "passthrough", label: "(b) pass-through Worker (workerd)" },
  { id: "passthroughDo", label: "(b2) pass-through + one Durable Object RPC (SQLite read + upsert)" },
  {
    id: "meteringFloor",
    label: "(b3) pass-through + the gateway's usage hand-off (producer, queue, consumer)",
  },
  { id: "meteringFloorDo", label: "(b4) pass-through + one object RPC + the usage hand-off" },
  { id: "gateway", label: "(c) gateway: key auth + DO admission + proxy + usage event" },
  { id: "nginx", label: "(d) nginx: key map + limit_req + proxy_pass" },
];
/** The cases whose requests make usage rows: each run waits for them to drain (and counts that CPU). */
const METERED = new Set<CaseId>(["meteringFloor", "meteringFloorDo", "gateway"]);
const LABELS = Object.fromEntries(CASES.map((c) => [c.id, c.label])) as Record<CaseId, string>;
/** "(b3)" of "(b3) pass-through + …". */
const SHORT = Object.fromEntries(CASES.map((c) => [c.id, c.label.split(" ")[0]])) as Record<CaseId, string>;

// ------------------------------------------------------------------------------- progress and ETA

const steps: Array<{ name: string; plannedS: number; actualS?: number }> = [];
function plan(name: string, plannedS: number): void {
  steps.push({ name, plannedS });
}
let stepStarted = 0;
function beginStep(name: string): void {
  if (interrupted) throw new Interrupted();
  stepStarted = Date.now();
  const remaining = steps.filter((s) => s.actualS === undefined);
  const done = steps.filter((s) => s.actualS !== undefined);
  const plannedDone = done.reduce((a, s) => a + s.plannedS, 0);
  const actualDone = done.reduce((a, s) => a + (s.actualS ?? 0), 0);
  const factor = plannedDone > 0 ? Math.max(1, actualDone / plannedDone) : 1.15;
  const eta = remaining.reduce((a, s) => a + s.plannedS, 0) * factor;
  log(`▶ ${name}  (ETA ${fmtDuration(eta)})`);
}
function endStep(name: string): void {
  const step = steps.find((s) => s.name === name && s.actualS === undefined);
  if (step) step.actualS = (Date.now() - stepStarted) / 1000;
}
function log(message: string): void {
  if (interrupted) return; // whatever was running when the signal came is not a result
  console.log(`[${fmtDuration((Date.now() - T0) / 1000)}] ${message}`);
}

// ---------------------------------------------------------------------------------------- cleanup

const cleanups: Array<{ name: string; fn: () => Promise<void> | void }> = [];
let cleaningUp: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    for (const { name, fn } of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`  cleanup: ${name}: ${err instanceof Error ? err.message : err}`);
      }
    }
  })();
  return cleaningUp;
}
// Last resort: an unexpected error still stops everything before the process goes.
process.on("uncaughtException", (err) => {
  console.error(`\nnpm run bench crashed: ${err.stack ?? err.message}`);
  void cleanup().then(() => process.exit(1));
});

let interrupted = false;
class Interrupted extends Error {}
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping everything the bench started…`);
    void cleanup().then(() => {
      console.error("Stopped; no results written (server logs: bench/results/logs/).");
      process.exit(130);
    });
  });

// ------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.platform !== "linux") throw new Error("the bench reads /proc: Linux only");
  const cases = CASES.length;
  plan("setup", 15);
  if (SOAK_MINUTES > 0) {
    plan("soak", SOAK_MINUTES * 60 + 20);
    plan("cleanup", 5);
    log(`npm run bench --soak: gateway and pass-through side by side for ${fmt(SOAK_MINUTES)} min`);
  } else {
    for (let r = 1; r <= CFG.rounds; r++) {
      for (const c of CASES)
        plan(
          `round ${r}/${CFG.rounds} · ${c.label}`,
          CFG.warmupS + CFG.durationS + (METERED.has(c.id) ? 12 : 0.5),
        );
      if (CFG.unloadedDurationS > 0)
        for (const c of CASES)
          plan(`round ${r}/${CFG.rounds} · 1 conn · ${c.label}`, CFG.unloadedDurationS + 1);
    }
    plan("profile: where the gateway's CPU goes", CFG.profileS + 3);
    plan("correctness: token bucket", CORRECTNESS_S + 5);
    plan("correctness: daily quota", CORRECTNESS_S + 5);
    plan("leased tenant", CFG.rounds * (2 * CFG.durationS + CFG.warmupS) + CORRECTNESS_S + 15);
    if (CFG.shedding)
      plan(
        "fair shedding: slowed origin, one flooding tenant",
        3 * SHEDDING.durationS + 2 * SHEDDING.warmupS + 40,
      );
    if (CFG.faultS > 0) plan("fault: usage queue refuses sends, then recovers", CFG.faultS + 25);
    if (CFG.syntheticEvents > 0) plan("metering: synthetic events", 15);
    if (CFG.auditBatchEvents > 0) plan("metering: request audit batch time", 30);
    plan("cleanup", 5);
  }
  if (SOAK_MINUTES === 0)
    log(
      `npm run bench: ${cases} cases × ${CFG.rounds} rounds, wrk -t${CFG.threads} -c${CFG.connections} ` +
        `-d${CFG.durationS}s (+${CFG.warmupS} s warm-up)${CFG.unloadedDurationS > 0 ? `, 1-connection runs ${CFG.unloadedDurationS} s` : ""}`,
    );

  // -------------------------------------------------------------------------------------- setup
  beginStep("setup");
  await ensureTools();
  const tmp = mkdtempSync(`${tmpdir()}/gw-bench-`);
  cleanups.push({ name: "temp dir", fn: () => rmSync(tmp, { recursive: true, force: true }) });
  const useShm = CFG.doStorage === "tmpfs" && existsSync("/dev/shm");
  const stateDir = useShm ? mkdtempSync("/dev/shm/gw-bench-") : `${tmp}/state`;
  mkdirSync(stateDir, { recursive: true });
  if (useShm)
    cleanups.push({ name: "state dir", fn: () => rmSync(stateDir, { recursive: true, force: true }) });
  mkdirSync(`${tmp}/logs`, { recursive: true });
  mkdirSync(`${tmp}/scratch`, { recursive: true });
  cleanups.push({ name: "logs", fn: () => keepLogs(`${tmp}/logs`) });
  const lua = writeLuaScripts(tmp);

  log("building the gateway bundle and case (b3)'s (wrangler deploy --dry-run) and starting Postgres…");
  const bundle = (outdir: string, ...args: string[]) =>
    run(`${ROOT}node_modules/.bin/wrangler`, ["deploy", "--dry-run", "--outdir", outdir, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        WRANGLER_SEND_METRICS: "false",
        WRANGLER_LOG_PATH: `${tmp}/logs/wrangler`,
      },
      timeoutMs: 120_000,
    });
  const [, , db] = await Promise.all([
    bundle(`${tmp}/bundle`),
    bundle(`${tmp}/floor-bundle`, "--config", `${ROOT}bench/metering-floor.wrangler.toml`),
    openBenchDatabase(),
  ]);
  cleanups.push({ name: "database", fn: () => db.stop() });
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  // An idle client hung up on (the database is dropped at the end) must not crash the bench.
  pool.on("error", () => {});
  cleanups.push({ name: "pg pool", fn: () => pool.end() });
  log(`Postgres: ${db.kind === "server" ? `fresh database on the server (${db.version})` : db.version}`);

  const node = process.execPath;
  const origin = await startServer<{ port: number }>(
    "origin",
    node,
    ["--import", "tsx", `${ROOT}bench/origin.ts`],
    {
      cwd: ROOT,
      logFile: `${tmp}/logs/origin.log`,
      readyTimeoutMs: 30_000,
    },
  );
  cleanups.push({ name: "origin", fn: () => origin.stop() });
  const originUrl = `http://127.0.0.1:${origin.ready.port}`;

  log("starting workerd (pass-through, gateway) and nginx…");
  const workers = (name: string, config: WorkersServerConfig) =>
    startServer<{
      url: string;
      producerUrl: string | null;
      controlUrl: string | null;
      floorUrl: string | null;
    }>(name, node, ["--import", "tsx", `${ROOT}bench/workers-server.ts`, JSON.stringify(config)], {
      cwd: ROOT,
      // Miniflare's own scratch dir (os.tmpdir()/miniflare-…) lands in ours, removed at the end.
      env: { ...process.env, TMPDIR: `${tmp}/scratch` },
      logFile: `${tmp}/logs/${name}.log`,
      readyTimeoutMs: 120_000,
      onLine: (line) => {
        const batch = (line as { queueBatch?: QueueBatch }).queueBatch;
        if (batch?.queue === "gateway-usage") queueBatches.push(batch);
      },
    });
  const nginxPort = await freePort();
  // The soak reads each workerd's isolate heaps through its inspector (bench/lib/heap.ts).
  const inspectors = SOAK_MINUTES > 0 ? { passthrough: await freePort(), gateway: await freePort() } : null;
  // The gateway's inspector also serves the CPU profile of the request path (bench/lib/profile.ts).
  const gatewayInspector = inspectors?.gateway ?? (await freePort());
  const [passthrough, passthroughDo, gateway] = await Promise.all([
    workers("passthrough", {
      mode: "passthrough",
      originUrl,
      persistRoot: `${stateDir}/passthrough`,
      inspectorPort: inspectors?.passthrough,
    }),
    workers("passthrough-do", {
      mode: "passthrough-do",
      originUrl,
      persistRoot: `${stateDir}/passthrough-do`,
    }),
    workers("gateway", {
      mode: "gateway",
      inspectorPort: gatewayInspector,
      originUrl,
      persistRoot: `${stateDir}/gateway`,
      bundleDir: `${tmp}/bundle`,
      floorBundleDir: `${tmp}/floor-bundle`,
      databaseUrl: db.url,
      adminToken: ADMIN_TOKEN,
      claimsSecret: randomBytes(32).toString("base64url"),
    }),
  ]);
  cleanups.push({ name: "pass-through workerd", fn: () => passthrough.stop() });
  cleanups.push({ name: "pass-through + object workerd", fn: () => passthroughDo.stop() });
  cleanups.push({ name: "gateway workerd", fn: () => gateway.stop() });
  const gatewayUrl = gateway.ready.url;

  // Seed through the admin API, as an operator would: plans, then tenants (each returns its first key).
  const admin = adminClient(gatewayUrl);
  const unlimited = await admin.post<{ id: string }>("/admin/v1/plans", {
    name: "bench-unlimited",
    burstCapacity: 1_000_000_000,
    refillTokens: 1_000_000_000,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  const bucketPlan = await admin.post<{ id: string }>("/admin/v1/plans", {
    name: "bench-bucket",
    burstCapacity: CFG.limit,
    refillTokens: 1,
    refillPeriodSeconds: 86_400,
    entitlements: ["api"],
  });
  const quotaPlan = await admin.post<{ id: string }>("/admin/v1/plans", {
    name: "bench-quota",
    burstCapacity: 1_000_000_000,
    refillTokens: 1_000_000_000,
    refillPeriodSeconds: 1,
    dailyQuota: CFG.limit,
    entitlements: ["api"],
  });
  const tenant = (slug: string, planId: string) =>
    admin.post<{ tenant: { id: string }; key: { id: string; key: string } }>("/admin/v1/tenants", {
      slug,
      name: `Bench ${slug}`,
      planId,
    });
  const main = await tenant("bench-load", unlimited.id);
  const bucket = await tenant("bench-bucket", bucketPlan.id);
  const quota = await tenant("bench-quota", quotaPlan.id);
  const meter = await tenant("bench-meter", unlimited.id);
  const faulty = await tenant("bench-fault", unlimited.id);
  const profiled = await tenant("bench-profile", unlimited.id);
  // Cases (b3) and (b4) charge their usage events to tenants of their own.
  const floor = await tenant("bench-floor", unlimited.id);
  const floorDo = await tenant("bench-floor-object", unlimited.id);
  const control = gateway.ready.controlUrl;
  const floorUrl = gateway.ready.floorUrl;
  if (!control || !floorUrl)
    throw new Error("gateway workers-server started without its queue control or case (b3)");

  // nginx knows the same key, among 99 other valid-looking ones.
  const nginxKeys = [
    main.key.key,
    ...Array.from({ length: 99 }, () => `gw_live_${randomBytes(20).toString("base64url")}`),
  ];
  const nginx = await startNginx({
    dir: `${tmp}/nginx`,
    port: nginxPort,
    originPort: origin.ready.port,
    keys: nginxKeys,
    logFile: `${tmp}/logs/nginx.log`,
    errorLog: `${tmp}/logs/nginx-error.log`,
  });
  cleanups.push({ name: "nginx", fn: () => nginx.stop("SIGTERM") });
  const nginxUrl = `http://127.0.0.1:${nginxPort}`;
  await waitFor(async () => (await status(`${nginxUrl}/v1/ping`)) !== 0, 10_000, "nginx to listen");

  const targets: Record<CaseId, { url: string; headers: Record<string, string>; server: Server<unknown> }> = {
    origin: { url: originUrl, headers: {}, server: origin },
    passthrough: { url: passthrough.ready.url, headers: {}, server: passthrough },
    passthroughDo: { url: passthroughDo.ready.url, headers: {}, server: passthroughDo },
    meteringFloor: {
      url: floorUrl,
      headers: { "x-bench-tenant": floor.tenant.id, "x-bench-key": floor.key.id },
      server: gateway,
    },
    meteringFloorDo: {
      url: floorUrl,
      headers: { "x-bench-tenant": floorDo.tenant.id, "x-bench-key": floorDo.key.id, "x-bench-object": "1" },
      server: gateway,
    },
    gateway: { url: gatewayUrl, headers: { Authorization: `Bearer ${main.key.key}` }, server: gateway },
    nginx: { url: nginxUrl, headers: { Authorization: `Bearer ${main.key.key}` }, server: nginx },
  };

  /** The tenant whose usage rows each metered case makes. */
  const meteredTenant: Partial<Record<CaseId, string>> = {
    gateway: main.tenant.id,
    meteringFloor: floor.tenant.id,
    meteringFloorDo: floorDo.tenant.id,
  };

  // Smoke: every target answers 200 through to the origin; the gateway and nginx refuse a missing key.
  for (const c of CASES) {
    const t = targets[c.id];
    // The case's own path: the gateway's usage rows are later checked against the origin's count of it.
    const s = await status(`${t.url}/v1/bench/${c.id}`, t.headers);
    if (s !== 200) throw new Error(`${c.label}: GET /v1/bench/${c.id} answered ${s}, not 200`);
  }
  for (const id of ["gateway", "nginx"] as const) {
    const s = await status(`${targets[id].url}/v1/bench/smoke`);
    if (s !== 401) throw new Error(`${LABELS[id]}: a request without a key answered ${s}, not 401`);
  }
  const postmaster = await postmasterPid(pool);
  const allServers = [origin, passthrough, passthroughDo, gateway, nginx];
  const machine = await describeMachine(db, postmaster);
  endStep("setup");

  if (SOAK_MINUTES > 0) {
    await soakRun({
      machine,
      lua: lua.report,
      originUrl,
      pool,
      gateway: { ...targets.gateway, pid: gateway.pid, inspectorPort: inspectors?.gateway ?? 0 },
      passthrough: {
        ...targets.passthrough,
        pid: passthrough.pid,
        inspectorPort: inspectors?.passthrough ?? 0,
      },
      tenantId: main.tenant.id,
    });
    return;
  }

  // ------------------------------------------------------------------------------------- rounds
  const poller = new SnapshotPoller(pool, 50);
  cleanups.push({ name: "snapshot poller", fn: () => poller.stop() });
  const runs: RunResult[] = [];
  const unloadedRuns: RunResult[] = [];
  const gatewayWindows: Array<[number, number]> = [];

  const measure = async (
    round: number,
    id: CaseId,
    connections: number,
    durationS: number,
    warmupS: number,
  ): Promise<RunResult> => {
    const t = targets[id];
    const url = `${t.url}/v1/bench/${id}`;
    const isGateway = id === "gateway";
    const metered = METERED.has(id);
    const windowStart = Date.now();
    const queueBefore = metered ? await queueStats(control) : null;
    const proxiedBefore = metered ? ((await originCounts(originUrl))[`/v1/bench/${id}`] ?? 0) : 0;
    if (isGateway) poller.start();
    if (warmupS > 0)
      await runWrk({
        url,
        threads: CFG.threads,
        connections,
        durationS: warmupS,
        headers: t.headers,
        script: lua.report,
      });
    const before = sample(t.server.pid, origin.pid, postmaster, allServers);
    const wrk = await runWrk({
      url,
      threads: CFG.threads,
      connections,
      durationS,
      headers: t.headers,
      script: lua.report,
    });
    const after = sample(t.server.pid, origin.pid, postmaster, allServers);
    const cpu = cpuBetween(before, after, wrk);
    const result: RunResult = { round, case: id, connections, wrk, cpu };
    if (metered) {
      const wrkEnd = Date.now();
      const expected = (await originCounts(originUrl))[`/v1/bench/${id}`] ?? 0;
      const tenantId = meteredTenant[id] ?? main.tenant.id;
      const drained = await waitForRows(pool, tenantId, { expected, quietMs: 0, timeoutMs: 60_000 });
      const afterDrain = sample(t.server.pid, origin.pid, postmaster, allServers);
      const ms = ticksToMs(afterDrain.server - before.server);
      cpu.serverMsAfterDrain = ms;
      cpu.serverMsByCommandAfterDrain = byCommandMs(before, afterDrain);
      if (before.postgres !== null && afterDrain.postgres !== null)
        cpu.postgresMsAfterDrain = ticksToMs(afterDrain.postgres - before.postgres);
      cpu.serverMsPer1kAfterDrain = (ms / wrk.requests) * 1000;
      const queueAfter = await queueStats(control);
      result.drain = {
        expected,
        rows: drained.rows,
        drainS: (drained.settledAt - wrkEnd) / 1000,
        timedOut: drained.timedOut,
        proxied: expected - proxiedBefore,
        queueMessages: queueAfter.messages - (queueBefore?.messages ?? 0),
        queueEvents: queueAfter.events - (queueBefore?.events ?? 0),
      };
      if (isGateway) {
        await poller.stop();
        gatewayWindows.push([windowStart, Date.now()]);
      }
    }
    return result;
  };

  for (let round = 1; round <= CFG.rounds; round++) {
    for (const c of CASES) {
      const name = `round ${round}/${CFG.rounds} · ${c.label}`;
      beginStep(name);
      const r = await measure(round, c.id, CFG.connections, CFG.durationS, CFG.warmupS);
      runs.push(r);
      log(`  ${summarizeRun(r)}`);
      endStep(name);
    }
    if (CFG.unloadedDurationS > 0)
      for (const c of CASES) {
        const name = `round ${round}/${CFG.rounds} · 1 conn · ${c.label}`;
        beginStep(name);
        const r = await measure(round, c.id, 1, CFG.unloadedDurationS, 1);
        unloadedRuns.push(r);
        log(`  ${summarizeRun(r)}`);
        endStep(name);
      }
  }

  // ------------------------------------------------------------------------------------ profile
  beginStep("profile: where the gateway's CPU goes");
  const profile = await profileGateway(
    gatewayInspector,
    `${tmp}/bundle/index.js`,
    async () => {
      const wrk = await runWrk({
        url: `${gatewayUrl}/v1/bench/profile`,
        threads: CFG.threads,
        connections: CFG.connections,
        durationS: CFG.profileS,
        headers: { Authorization: `Bearer ${profiled.key.key}` },
        script: lua.report,
      });
      return wrk.requests;
    },
    { saveDir: `${RESULTS_DIR}/profile` },
  );
  log(
    `  ${fmt(profile.requests)} requests profiled: ${profile.rows
      .slice(0, 4)
      .map((r) => `${r.step.replace(/ \(.*$/, "")} ${fmt(r.msPer1k)} ms/1k`)
      .join(", ")} …`,
  );
  endStep("profile: where the gateway's CPU goes");

  // -------------------------------------------------------------------------------- correctness
  const correctness: CorrectnessResult[] = [];
  const limited = [
    {
      name: "token-bucket",
      description: `token bucket: burst ${CFG.limit}, refill 1 per day`,
      step: "correctness: token bucket",
      t: bucket,
    },
    {
      name: "daily-quota",
      description: `daily quota ${CFG.limit} (bucket unlimited)`,
      step: "correctness: daily quota",
      t: quota,
    },
  ];
  for (const l of limited) {
    beginStep(l.step);
    const path = `/v1/bench/limit-${l.name}`;
    const wrkStart = Date.now();
    const wrk = await runWrk({
      url: `${gatewayUrl}${path}`,
      threads: CFG.threads,
      connections: CFG.connections,
      durationS: CORRECTNESS_S,
      headers: { Authorization: `Bearer ${l.t.key.key}` },
      script: lua.count,
    });
    const wrkEnd = Date.now();
    const statuses = wrk.statuses ?? {};
    const clientSaw2xx = Object.entries(statuses)
      .filter(([s]) => Number(s) >= 200 && Number(s) < 300)
      .reduce((a, [, n]) => a + n, 0);
    const rejected429 = statuses["429"] ?? 0;
    const sent = Object.values(statuses).reduce((a, n) => a + n, 0);
    // Admitted = what the gateway let through to the origin. wrk's 2xx count can only be lower: an
    // admitted response still on its way when wrk's -d ends is not counted by wrk.
    const admitted = (await originCounts(originUrl))[path] ?? 0;
    // Every admitted request writes one row: wait for them, then a quiet period longer than the
    // queue's batch timeout (1 s) so that any extra row would have shown up too.
    await waitForRows(pool, l.t.tenant.id, { expected: admitted, quietMs: 0, timeoutMs: 30_000 });
    const settled = await waitForRows(pool, l.t.tenant.id, {
      expected: null,
      quietMs: 3_000,
      timeoutMs: 15_000,
    });
    const rows = await admittedRows(pool, l.t.tenant.id);
    const admittedEqualsLimit = admitted === CFG.limit && clientSaw2xx <= CFG.limit;
    const rowsEqualAdmitted = settled.rows === admitted;
    const result: CorrectnessResult = {
      name: l.name,
      description: l.description,
      limit: CFG.limit,
      durationS: CORRECTNESS_S,
      connections: CFG.connections,
      sent,
      statuses,
      admitted,
      clientSaw2xx,
      inFlightAtEnd: Math.max(0, admitted - clientSaw2xx),
      rejected429,
      other: sent - clientSaw2xx - rejected429,
      socketErrors: wrk.errors.connect + wrk.errors.read + wrk.errors.write + wrk.errors.timeout,
      usageRows: settled.rows,
      drainS: (settled.settledAt - wrkEnd) / 1000,
      admittedAfterStartMs: [rows.firstTs - wrkStart, rows.lastTs - wrkStart],
      slowestAdmittedMs: rows.maxLatencyMs,
      slowestAdmitted: rows.slowest.map((x) => ({ atMs: x.at - wrkStart, latencyMs: x.latencyMs })),
      wrkMaxLatencyMs: wrk.latencyMs.max,
      admittedEqualsLimit,
      rowsEqualAdmitted,
      pass: admittedEqualsLimit && rowsEqualAdmitted,
    };
    correctness.push(result);
    log(
      `  ${l.description}: ${fmt(sent)} responses, admitted ${fmt(admitted)} (limit ${CFG.limit}), 2xx seen by wrk ` +
        `${fmt(clientSaw2xx)}, 429 ${fmt(rejected429)}, usage rows ${fmt(settled.rows)} → ${result.pass ? "PASS" : "FAIL"}` +
        ` (slowest admitted ${fmt(rows.maxLatencyMs)} ms)`,
    );
    endStep(l.step);
  }

  beginStep("leased tenant");
  const leased = await leasedCase({
    gatewayUrl,
    passthroughUrl: passthrough.ready.url,
    controlUrl: control,
    pool,
    rounds: CFG.rounds,
    threads: CFG.threads,
    connections: CFG.connections,
    durationS: CFG.durationS,
    warmupS: CFG.warmupS,
    overshootS: CORRECTNESS_S,
    lua,
    seed: admin.post,
    originCounts: () => originCounts(originUrl),
    log,
    cpuMs: (server) => ticksToMs(treeTicks((server === "gateway" ? gateway : passthrough).pid, procTable())),
  });
  log(
    `  leased: ${fmt(leased.throughput.ratio, 2)}× pass-through, ${fmt(leased.throughput.callsPerRequest, 4)} object calls/request; ` +
      `tight bucket overshoot ${fmt(leased.overshoot.overshoot)} (${fmt(leased.overshoot.overshootPct, 2)} % of the burst) → ` +
      `${leased.overshoot.pass ? "PASS" : "FAIL"}`,
  );
  endStep("leased tenant");
  // ------------------------------------------------------------------------------ fair shedding
  let shedding: SheddingResult | undefined;
  if (CFG.shedding) {
    const step = "fair shedding: slowed origin, one flooding tenant";
    beginStep(step);
    const slowOrigin = await startServer<{ port: number }>(
      "slow-origin",
      node,
      ["--import", "tsx", `${ROOT}bench/origin.ts`],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          ORIGIN_DELAY_MS: String(SHEDDING.originDelayMs),
          ORIGIN_CONCURRENCY: String(SHEDDING.originConcurrency),
        },
        logFile: `${tmp}/logs/slow-origin.log`,
        readyTimeoutMs: 30_000,
      },
    );
    cleanups.push({ name: "slow origin", fn: () => slowOrigin.stop() });
    const slowUrl = `http://127.0.0.1:${slowOrigin.ready.port}`;
    shedding = await sheddingScenario({
      cfg: SHEDDING,
      adminToken: ADMIN_TOKEN,
      log,
      startGateway: async (mode) => {
        const server = await workers(`gateway-shedding-${mode}`, {
          mode: "gateway",
          originUrl: slowUrl,
          persistRoot: `${stateDir}/shedding-${mode}`,
          bundleDir: `${tmp}/bundle`,
          databaseUrl: db.url,
          adminToken: ADMIN_TOKEN,
          claimsSecret: randomBytes(32).toString("base64url"),
          vars: scenarioVars(slowUrl, SHEDDING, mode),
        });
        return { url: server.ready.url, stop: () => server.stop() };
      },
    });
    await slowOrigin.stop();
    endStep(step);
  }

  // ----------------------------------------------------------------------------------- metering
  const gatewayRuns = runs.filter((r) => r.case === "gateway");
  const loadTimings = (
    await Promise.all(gatewayWindows.map(([from, to]) => rowTimings(pool, poller, main.tenant.id, from, to)))
  ).flat();
  // Every proxied request of every gateway run (smoke, warm-ups, 32- and 1-connection runs): one row
  // each; the same for cases (b3) and (b4), each on a tenant of its own.
  const counts = await originCounts(originUrl);
  const finalExpected = counts["/v1/bench/gateway"] ?? 0;
  const [finalRows = 0, ...floorRows] = await Promise.all(
    (["gateway", "meteringFloor", "meteringFloorDo"] as const).map(async (id) => {
      const tenantId = meteredTenant[id] ?? main.tenant.id;
      const expected = counts[`/v1/bench/${id}`] ?? 0;
      await waitForRows(pool, tenantId, { expected, quietMs: 0, timeoutMs: 60_000 });
      // Then quiet for 3 s: a row too many (an event stored twice) would show here.
      return (await waitForRows(pool, tenantId, { expected: null, quietMs: 3_000, timeoutMs: 15_000 })).rows;
    }),
  );
  const floors = (["meteringFloor", "meteringFloorDo"] as const).map((id, i) => ({
    case: id,
    requests: counts[`/v1/bench/${id}`] ?? 0,
    rows: floorRows[i] ?? 0,
  }));
  const allGatewayRuns = [...runs, ...unloadedRuns].filter((r) => r.case === "gateway");
  const queueMessages = sumOf(allGatewayRuns.map((r) => r.drain?.queueMessages ?? 0));
  const queueProxied = sumOf(allGatewayRuns.map((r) => r.drain?.proxied ?? 0));
  const pgMs = gatewayRuns.map((r) => r.cpu.postgresMsAfterDrain).filter((v): v is number => v !== undefined);
  const metering: MeteringResult = {
    underLoad: {
      requests: finalExpected,
      rows: finalRows,
      offeredEventsPerS: median(gatewayRuns.map((r) => r.wrk.rps)),
      lag: lagStats(loadTimings, poller),
      drainS: median(gatewayRuns.map((r) => r.drain?.drainS ?? Number.NaN)),
      postgresCpuMsPer1kEvents:
        pgMs.length > 0
          ? (pgMs.reduce((a, b) => a + b, 0) / sumOf(gatewayRuns.map((r) => r.wrk.requests))) * 1000
          : null,
      consumer: batchStats(
        queueBatches.filter((b) => gatewayWindows.some(([from, to]) => b.at >= from && b.at <= to)),
        sumOf(allGatewayRuns.map((r) => r.drain?.queueEvents ?? 0)) / Math.max(1, queueMessages),
      ),
      queueMessages,
      queueProxied,
      messagesPerRequest: queueMessages / queueProxied,
    },
    floors,
    synthetic: null,
    fault: null,
  };
  log(
    `  metering under load: ${fmt(finalRows)} usage rows for ${fmt(finalExpected)} proxied requests ` +
      `${finalRows === finalExpected ? "(all stored)" : "(FAIL)"}; ${fmt(queueMessages)} queue messages for ` +
      `${fmt(queueProxied)} requests = ${fmt(queueMessages / queueProxied, 4)}/request; ` +
      `lag p50 ${fmt(metering.underLoad.lag.p50Ms)} ms, p99 ${fmt(metering.underLoad.lag.p99Ms)} ms; ` +
      floors
        .map(
          (f) =>
            `${SHORT[f.case]}: ${fmt(f.rows)} rows for ${fmt(f.requests)} requests${f.rows === f.requests ? "" : " (FAIL)"}`,
        )
        .join(", "),
  );

  if (CFG.faultS > 0) {
    const step = "fault: usage queue refuses sends, then recovers";
    beginStep(step);
    metering.fault = await faultCase({
      gatewayUrl,
      originUrl,
      control,
      pool,
      tenant: faulty,
      faultS: CFG.faultS,
      lua: lua.report,
    });
    const f = metering.fault;
    log(
      `  fault: sends refused for ${fmt(f.faultS, 1)} s (${fmt(f.refusedSends)} sends, ${fmt(f.refusedEvents)} events refused); ` +
        `${fmt(f.rows)} usage rows for ${fmt(f.proxied)} proxied requests, reconciliation differences ${f.differences} ` +
        `(drained ${fmt(f.drainS, 1)} s after recovery) → ${f.pass ? "PASS" : "FAIL"}`,
    );
    endStep(step);
  }

  if (CFG.syntheticEvents > 0 && gateway.ready.producerUrl) {
    beginStep("metering: synthetic events");
    const k = CFG.syntheticEvents;
    const syntheticStart = Date.now();
    poller.start();
    const before = sample(gateway.pid, origin.pid, postmaster, allServers);
    const produced = await fetch(
      `${gateway.ready.producerUrl}/produce?n=${k}&tenant=${meter.tenant.id}&key=${meter.key.id}&run=${process.pid.toString(36)}`,
      { method: "POST", signal: AbortSignal.timeout(120_000) },
    ).then(async (res) => {
      if (!res.ok) throw new Error(`producer answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as { sent: number; messages: number; startedAt: number; finishedAt: number };
    });
    const drained = await waitForRows(pool, meter.tenant.id, {
      expected: k,
      quietMs: 0,
      timeoutMs: 120_000,
      everyMs: 200,
    });
    const after = sample(gateway.pid, origin.pid, postmaster, allServers);
    await poller.stop();
    const timings = await rowTimings(pool, poller, meter.tenant.id);
    // A batch's log line comes once its handler has finished (after its rows are visible): wait for all.
    const logged = () => sumOf(queueBatches.filter((b) => b.at >= syntheticStart).map((b) => b.total));
    for (let i = 0; i < 100 && logged() < produced.messages; i++)
      await new Promise((r) => setTimeout(r, 100));
    const syntheticBatches = queueBatches.filter((b) => b.at >= syntheticStart);
    const visible = timings.map((t) => t.visible).filter((v): v is number => v !== null);
    const lastVisible = max(visible);
    const firstVisible = min(visible);
    metering.synthetic = {
      events: k,
      rows: drained.rows,
      produceS: (produced.finishedAt - produced.startedAt) / 1000,
      eventsPerS: drained.rows / ((lastVisible - produced.startedAt) / 1000),
      // The consumer alone: rows ÷ the time its queue() handler ran (Miniflare runs one batch at a time).
      consumerEventsPerS: drained.rows / (sumOf(syntheticBatches.map((b) => b.ms)) / 1000),
      firstToLastRowS: (lastVisible - firstVisible) / 1000,
      messages: produced.messages,
      lag: lagStats(timings, poller),
      timedOut: drained.timedOut,
      consumer: batchStats(syntheticBatches, k / Math.max(1, produced.messages)),
      gatewayCpuMsPer1kEvents: (ticksToMs(after.server - before.server) / k) * 1000,
      postgresCpuMsPer1kEvents:
        after.postgres !== null && before.postgres !== null
          ? (ticksToMs(after.postgres - before.postgres) / k) * 1000
          : null,
    };
    log(
      `  synthetic: ${fmt(drained.rows)}/${fmt(k)} rows, ${fmt(metering.synthetic.eventsPerS)} events/s end to end, ` +
        `consumer ${fmt(metering.synthetic.consumerEventsPerS)} events/s, lag p50 ${fmt(metering.synthetic.lag.p50Ms)} ms`,
    );
    endStep("metering: synthetic events");
  }

  if (CFG.auditBatchEvents > 0) {
    beginStep("metering: request audit batch time");
    const audit = await auditBatchTimes({
      databaseUrl: db.url,
      tenant: async (slug) => {
        const t = await tenant(slug, unlimited.id);
        return { tenantId: t.tenant.id, keyId: t.key.id };
      },
      events: CFG.auditBatchEvents,
    });
    log(
      `  request audit: ${audit.batchMs.map((b) => `${fmt(b.ms)} ms per ${fmt(audit.events)}-event batch over ${b.tenants} tenant(s)`).join(", ")} ` +
        `(median of ${audit.runs}); the SHA-256 chain alone ${fmt(audit.hashMs)} ms → ${audit.pass ? "PASS" : `FAIL: ${audit.failures.join("; ")}`}`,
    );
    if (!audit.pass) process.exitCode = 1;
    endStep("metering: request audit batch time");
  }

  // ------------------------------------------------------------------------------------ results
  const summary = CASES.map((c) => summarize(c.id, runs));
  const unloaded = CFG.unloadedDurationS > 0 ? CASES.map((c) => summarize(c.id, unloadedRuns)) : [];
  const results: BenchResults = {
    version: 1,
    startedAt: new Date(T0).toISOString(),
    finishedAt: "",
    wallTimeS: 0,
    config: { ...CFG, doStorage: useShm ? "tmpfs (/dev/shm)" : "disk (temp dir)" },
    machine,
    labels: LABELS,
    runs,
    unloadedRuns,
    summary,
    unloaded,
    ratios: ratios(runs, unloadedRuns),
    profile,
    correctness,
    metering,
    leased,
    ...(shedding ? { shedding } : {}),
  };

  beginStep("cleanup");
  await cleanup();
  endStep("cleanup");
  if (interrupted) return;
  results.finishedAt = new Date().toISOString();
  results.wallTimeS = (Date.now() - T0) / 1000;
  results.machine["load average (end)"] = loadavg()
    .map((v) => v.toFixed(2))
    .join(" ");

  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}/latest.json`, `${JSON.stringify(results, null, 2)}\n`);
  const markdown = renderMarkdown(results);
  writeIntoDoc(DOC, markdown);
  console.log(`\n${markdown}`);
  log(`wrote bench/results/latest.json and docs/BENCHMARKS.md (wall time ${fmtDuration(results.wallTimeS)})`);
  if (!correctness.every((c) => c.pass)) {
    console.error("correctness under load: FAIL (see the table above)");
    process.exitCode = 1;
  }
  if (metering.underLoad.rows !== metering.underLoad.requests) {
    console.error(
      `metering: FAIL: ${fmt(metering.underLoad.rows)} usage rows for ${fmt(metering.underLoad.requests)} proxied requests`,
    );
    process.exitCode = 1;
  }
  for (const f of floors.filter((f) => f.rows !== f.requests)) {
    console.error(
      `metering ${SHORT[f.case]}: FAIL: ${fmt(f.rows)} usage rows for ${fmt(f.requests)} requests`,
    );
    process.exitCode = 1;
  }
  if (!leased.overshoot.pass) {
    console.error("leased tenant: FAIL (overshoot over 1 % of the burst, or usage rows ≠ admitted)");
    process.exitCode = 1;
  }
  if (metering.fault && !metering.fault.pass) {
    console.error("metering fault case: FAIL (see the table above)");
    process.exitCode = 1;
  }
  if (metering.synthetic && metering.synthetic.rows !== metering.synthetic.events) {
    console.error(
      `metering synthetic run: FAIL: ${metering.synthetic.rows}/${metering.synthetic.events} rows`,
    );
    process.exitCode = 1;
  }
}

// ------------------------------------------------------------------------------------------ soak

async function soakRun(o: {
  machine: Record<string, string>;
  lua: string;
  originUrl: string;
  pool: pg.Pool;
  gateway: { url: string; headers: Record<string, string>; pid: number; inspectorPort: number };
  passthrough: { url: string; headers: Record<string, string>; pid: number; inspectorPort: number };
  tenantId: string;
}): Promise<void> {
  beginStep("soak");
  const totalS = Math.round(SOAK_MINUTES * 60);
  // Warm-up = 40 % of the run, at most 4 min: the gateway at ~600 req/s reaches its steady heap
  // (isolate caches filled, JIT and GC settled) after ~120 s, the pass-through at ~2,600 req/s within
  // ~60 s; growth is measured once both are there (a 60 s warm-up counted the gateway's own warm-up as growth).
  const warmupS = Math.min(240, Math.max(10, Math.round(totalS * 0.4)));
  const connectionsEach = Math.max(1, Math.floor(CFG.connections / 2));
  const startedAt = new Date().toISOString();
  log(`  ${totalS} s of load, ${connectionsEach} connections each; RSS every 10 s, warm-up ${warmupS} s`);
  const rss = sampleRss(o.gateway.pid, o.passthrough.pid);
  // Each workerd's isolate heaps after a full GC, once at the end of the warm-up and once at the end.
  // The snapshots are kept in bench/results/heap/ (compare warm and end in Chrome DevTools).
  const readHeaps = async (label: string) => ({
    gateway: await isolateHeaps(o.gateway.inspectorPort, {
      snapshotDir: HEAP_DIR,
      label: `gateway-${label}`,
    }),
    passthrough: await isolateHeaps(o.passthrough.inspectorPort),
  });
  const warmHeaps = new Promise<Awaited<ReturnType<typeof readHeaps>>>((resolve, reject) =>
    setTimeout(() => readHeaps("warm").then(resolve, reject), warmupS * 1000),
  );
  const progress = setInterval(() => {
    const s = rss.samples.at(-1);
    if (s)
      log(
        `  ${fmt(s.atS)} s: workerd RSS gateway ${fmt(s.gateway.workerd ?? 0)} MiB, pass-through ${fmt(s.passthrough.workerd ?? 0)} MiB`,
      );
  }, 60_000);
  const load = (t: { url: string; headers: Record<string, string> }, path: string) =>
    runWrk({
      url: `${t.url}${path}`,
      threads: 1,
      connections: connectionsEach,
      durationS: totalS,
      headers: t.headers,
      script: o.lua,
    });
  let gw: WrkResult;
  let pt: WrkResult;
  try {
    [gw, pt] = await Promise.all([
      load(o.gateway, "/v1/bench/soak"),
      load(o.passthrough, "/v1/bench/soak-pt"),
    ]);
  } finally {
    clearInterval(progress);
    rss.stop();
  }
  const heaps = { warm: await warmHeaps, end: await readHeaps("end") };
  const counts = await originCounts(o.originUrl);
  // The gateway tenant's rows: the smoke request and the soak.
  const expected = (counts["/v1/bench/soak"] ?? 0) + (counts["/v1/bench/gateway"] ?? 0);
  await waitForRows(o.pool, o.tenantId, { expected, quietMs: 0, timeoutMs: 60_000 });
  const rows = (await waitForRows(o.pool, o.tenantId, { expected: null, quietMs: 3_000, timeoutMs: 15_000 }))
    .rows;
  const proxied =
    ((await originCounts(o.originUrl))["/v1/bench/soak"] ?? 0) + (counts["/v1/bench/gateway"] ?? 0);
  const gateway = soakSide(rss.samples, "gateway", warmupS, gw);
  const passthrough = soakSide(rss.samples, "passthrough", warmupS, pt);
  const result: SoakResult = {
    startedAt,
    minutes: SOAK_MINUTES,
    warmupS,
    connectionsEach,
    gateway,
    passthrough,
    excessGrowthPct: gateway.workerdTrendPct - passthrough.workerdTrendPct,
    usage: { proxied, rows, pass: rows === proxied },
    heaps,
    samples: rss.samples,
  };
  log(
    `  gateway ${fmt(gw.rps)} req/s, workerd ${fmt(gateway.warm.workerd ?? 0)} → ${fmt(gateway.end.workerd ?? 0)} MiB ` +
      `(${fmt(gateway.workerdGrowthPct, 1)} %); pass-through ${fmt(pt.rps)} req/s, workerd ` +
      `${fmt(passthrough.warm.workerd ?? 0)} → ${fmt(passthrough.end.workerd ?? 0)} MiB (${fmt(passthrough.workerdGrowthPct, 1)} %); ` +
      `usage rows ${fmt(rows)}/${fmt(proxied)} ${result.usage.pass ? "PASS" : "FAIL"}`,
  );
  endStep("soak");
  beginStep("cleanup");
  await cleanup();
  endStep("cleanup");
  if (interrupted) return;
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    `${RESULTS_DIR}/soak.json`,
    `${JSON.stringify({ ...result, machine: o.machine }, null, 2)}\n`,
  );
  const markdown = renderSoak(result, o.machine);
  writeIntoDoc(DOC, markdown, SOAK_BEGIN, SOAK_END, "Memory soak (`npm run bench -- --soak`)");
  console.log(`\n${markdown}`);
  log("wrote bench/results/soak.json and the soak section of docs/BENCHMARKS.md");
  if (!result.usage.pass) {
    console.error(`soak: FAIL: ${rows} usage rows for ${proxied} proxied requests`);
    process.exitCode = 1;
  }
}

// ----------------------------------------------------------------------------------- measurement

interface Sample {
  at: number;
  server: number;
  serverByCommand: Record<string, number>;
  origin: number;
  postgres: number | null;
  mine: number;
  machine: { busy: number; total: number };
  self: { own: number; children: number };
}

function sample(
  serverPid: number,
  originPid: number,
  postmaster: number | null,
  all: Array<Server<unknown>>,
): Sample {
  const table = procTable();
  const serverByCommand = treeTicksByCommand(serverPid, table);
  return {
    at: performance.now(),
    server: Object.values(serverByCommand).reduce((a, b) => a + b, 0),
    serverByCommand,
    origin: treeTicks(originPid, table),
    postgres: postmaster === null ? null : treeTicks(postmaster, table),
    mine: all.reduce((a, s) => a + treeTicks(s.pid, table), 0),
    machine: machineTicks(),
    self: selfTicks(),
  };
}

const ticksToMs = (ticks: number) => (ticks / CLK_TCK) * 1000;

function byCommandMs(a: Sample, b: Sample): Record<string, number> {
  return Object.fromEntries(
    Object.entries(b.serverByCommand).map(([comm, ticks]) => [
      comm,
      ticksToMs(ticks - (a.serverByCommand[comm] ?? 0)),
    ]),
  );
}

function cpuBetween(a: Sample, b: Sample, wrk: WrkResult): CpuSample {
  const seconds = (b.at - a.at) / 1000;
  const serverMs = ticksToMs(b.server - a.server);
  const wrkTicks = b.self.children - a.self.children; // wrk is the only child reaped meanwhile
  const pgTicks = a.postgres !== null && b.postgres !== null ? b.postgres - a.postgres : null;
  const busy = b.machine.busy - a.machine.busy;
  const accounted = b.mine - a.mine + (b.self.own - a.self.own) + wrkTicks + (pgTicks ?? 0);
  return {
    serverMs,
    serverMsPer1k: (serverMs / wrk.requests) * 1000,
    serverMsByCommand: byCommandMs(a, b),
    originMs: ticksToMs(b.origin - a.origin),
    wrkMs: ticksToMs(wrkTicks),
    postgresMs: pgTicks === null ? null : ticksToMs(pgTicks),
    machineBusyCores: busy / CLK_TCK / seconds,
    otherCores: Math.max(0, (busy - accounted) / CLK_TCK / seconds),
  };
}

function summarizeRun(r: RunResult): string {
  const w = r.wrk;
  const cpu = r.cpu.serverMsPer1kAfterDrain ?? r.cpu.serverMsPer1k;
  const drain = r.drain
    ? ` · usage rows ${fmt(r.drain.rows)}/${fmt(r.drain.expected)} ${r.drain.timedOut ? "(NOT drained)" : `drained +${fmt(r.drain.drainS, 1)} s`}` +
      ` · ${fmt(r.drain.queueMessages)} queue messages for ${fmt(r.drain.proxied)} requests (${fmt(r.drain.queueMessages / r.drain.proxied, 4)}/request)`
    : "";
  return (
    `${fmt(w.rps)} req/s · p50 ${fmtMs(w.latencyMs.p50)} p99 ${fmtMs(w.latencyMs.p99)} p99.9 ${fmtMs(w.latencyMs.p999)} ms · ` +
    `errors ${fmt(w.errorTotal)} · CPU ${fmtMs(cpu)} ms/1k · other load ${fmt(r.cpu.otherCores, 2)} cores${drain}`
  );
}

function summarize(id: CaseId, all: RunResult[]): CaseSummary {
  const rs = all.filter((r) => r.case === id);
  const after = rs.map((r) => r.cpu.serverMsPer1kAfterDrain).filter((v): v is number => v !== undefined);
  return {
    case: id,
    label: LABELS[id],
    connections: rs[0]?.connections ?? 0,
    rounds: rs.length,
    rps: median(rs.map((r) => r.wrk.rps)),
    rpsMin: min(rs.map((r) => r.wrk.rps)),
    rpsMax: max(rs.map((r) => r.wrk.rps)),
    p50: median(rs.map((r) => r.wrk.latencyMs.p50)),
    p99: median(rs.map((r) => r.wrk.latencyMs.p99)),
    p999: median(rs.map((r) => r.wrk.latencyMs.p999)),
    errors: sumOf(rs.map((r) => r.wrk.errorTotal)),
    requests: sumOf(rs.map((r) => r.wrk.requests)),
    cpuMsPer1k: median(rs.map((r) => r.cpu.serverMsPer1k)),
    ...(after.length > 0 ? { cpuMsPer1kAfterDrain: median(after) } : {}),
    cpuMsPer1kByCommand: Object.fromEntries(
      [...new Set(rs.flatMap((r) => Object.keys(r.cpu.serverMsByCommand)))].map((comm) => [
        comm,
        median(
          rs.map(
            (r) =>
              (((r.cpu.serverMsByCommandAfterDrain ?? r.cpu.serverMsByCommand)[comm] ?? 0) / r.wrk.requests) *
              1000,
          ),
        ),
      ]),
    ),
    otherCores: median(rs.map((r) => r.cpu.otherCores)),
  };
}

function ratios(runs: RunResult[], unloadedRuns: RunResult[]): Ratios {
  const perRound = (set: RunResult[], f: (byCase: Record<CaseId, RunResult>) => number) => {
    const rounds = [...new Set(set.map((r) => r.round))];
    return median(
      rounds.map((round) => {
        const byCase = Object.fromEntries(
          set.filter((r) => r.round === round).map((r) => [r.case, r]),
        ) as Record<CaseId, RunResult>;
        return f(byCase);
      }),
    );
  };
  const cpu = (r: RunResult) => r.cpu.serverMsPer1kAfterDrain ?? r.cpu.serverMsPer1k;
  const hasUnloaded = unloadedRuns.length > 0;
  return {
    gatewayOverPassthroughRps: perRound(runs, (c) => c.gateway.wrk.rps / c.passthrough.wrk.rps),
    gatewayOverPassthroughDoRps: perRound(runs, (c) => c.gateway.wrk.rps / c.passthroughDo.wrk.rps),
    gatewayOverPassthroughDoCpu: perRound(runs, (c) => cpu(c.gateway) / cpu(c.passthroughDo)),
    passthroughDoOverPassthroughRps: perRound(runs, (c) => c.passthroughDo.wrk.rps / c.passthrough.wrk.rps),
    meteringFloorOverPassthroughRps: perRound(runs, (c) => c.meteringFloor.wrk.rps / c.passthrough.wrk.rps),
    meteringFloorOverPassthroughCpu: perRound(runs, (c) => cpu(c.meteringFloor) / cpu(c.passthrough)),
    meteringFloorDoOverPassthroughDoRps: perRound(
      runs,
      (c) => c.meteringFloorDo.wrk.rps / c.passthroughDo.wrk.rps,
    ),
    gatewayOverMeteringFloorDoRps: perRound(runs, (c) => c.gateway.wrk.rps / c.meteringFloorDo.wrk.rps),
    gatewayOverPassthroughCpu: perRound(runs, (c) => cpu(c.gateway) / cpu(c.passthrough)),
    gatewayOverPassthroughCpuRequestPath: perRound(
      runs,
      (c) => c.gateway.cpu.serverMsPer1k / c.passthrough.cpu.serverMsPer1k,
    ),
    gatewayOverNginxRps: perRound(runs, (c) => c.gateway.wrk.rps / c.nginx.wrk.rps),
    gatewayOverNginxCpu: perRound(runs, (c) => cpu(c.gateway) / cpu(c.nginx)),
    passthroughOverNginxRps: perRound(runs, (c) => c.passthrough.wrk.rps / c.nginx.wrk.rps),
    addedP50MsOverDirect: perRound(runs, (c) => c.gateway.wrk.latencyMs.p50 - c.origin.wrk.latencyMs.p50),
    addedP99MsOverDirect: perRound(runs, (c) => c.gateway.wrk.latencyMs.p99 - c.origin.wrk.latencyMs.p99),
    addedP50MsOverDirectUnloaded: hasUnloaded
      ? perRound(unloadedRuns, (c) => c.gateway.wrk.latencyMs.p50 - c.origin.wrk.latencyMs.p50)
      : null,
    addedP99MsOverDirectUnloaded: hasUnloaded
      ? perRound(unloadedRuns, (c) => c.gateway.wrk.latencyMs.p99 - c.origin.wrk.latencyMs.p99)
      : null,
  };
}

function lagStats(timings: Array<{ ts: number; visible: number | null }>, poller: SnapshotPoller): LagStats {
  const lags = timings.filter((t) => t.visible !== null).map((t) => (t.visible as number) - t.ts);
  return {
    events: lags.length,
    p50Ms: percentile(lags, 50),
    p99Ms: percentile(lags, 99),
    maxMs: max(lags),
    resolutionMs: poller.resolutionMs(),
  };
}

const sumOf = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** `eventsPerMessage`: usage events per queue message (envelopes carry many; a legacy message one). */
function batchStats(batches: QueueBatch[], eventsPerMessage = 1): ConsumerStats {
  const sizes = batches.map((b) => b.total);
  const ms = batches.map((b) => b.ms);
  const p50 = percentile(ms, 50);
  const size = median(sizes);
  return {
    batches: batches.length,
    messages: sumOf(sizes),
    retried: sumOf(batches.map((b) => b.total - b.acked)),
    medianBatchSize: size,
    handlerP50Ms: p50,
    handlerP99Ms: percentile(ms, 99),
    eventsPerMessage,
    ceilingEventsPerS: ((size * eventsPerMessage) / p50) * 1000,
    busyEventsPerS: (sumOf(sizes) * eventsPerMessage) / (sumOf(ms) / 1000),
  };
}

// --------------------------------------------------------------------------------------- helpers

async function ensureTools(): Promise<void> {
  const missing = ["wrk", "nginx"].filter((tool) => !onPath(tool));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`missing ${missing.join(", ")}: run \`sudo apt-get install -y wrk nginx-light\` first`);
  log(`installing ${missing.join(", ")} from Debian (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const packages = missing.map((t) => (t === "nginx" ? "nginx-light" : t));
  const install = (pkgs: string[]) =>
    run("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], { env, timeoutMs: 300_000 });
  try {
    await install(packages);
  } catch {
    await run("apt-get", ["update"], { env, timeoutMs: 300_000 });
    await install(packages).catch(() => install(missing)); // nginx-light gone in newer Debian: plain nginx
  }
  const still = ["wrk", "nginx"].filter((tool) => !onPath(tool));
  if (still.length > 0) throw new Error(`could not install ${still.join(", ")}`);
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(`${dir}/${tool}`));
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function adminClient(base: string) {
  return {
    async post<T>(path: string, body: unknown): Promise<T> {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`seeding: POST ${path} answered ${res.status}: ${text}`);
      return JSON.parse(text) as T;
    },
  };
}

/** When the tenant's admitted requests arrived (DO clock) and the slowest one's gateway latency. */
async function admittedRows(pool: pg.Pool, tenantId: string) {
  const { rows } = await pool.query<{ first: string; last: string; slowest: number }>(
    `SELECT (extract(epoch FROM min(ts)) * 1000)::text AS first, (extract(epoch FROM max(ts)) * 1000)::text AS last,
            max(latency_ms) AS slowest FROM usage_events WHERE tenant_id = $1`,
    [tenantId],
  );
  const r = rows[0];
  const slow = await pool.query<{ at: string; latency_ms: number }>(
    `SELECT (extract(epoch FROM ts) * 1000)::text AS at, latency_ms FROM usage_events
      WHERE tenant_id = $1 ORDER BY latency_ms DESC LIMIT 10`,
    [tenantId],
  );
  return {
    firstTs: Number(r?.first),
    lastTs: Number(r?.last),
    maxLatencyMs: Number(r?.slowest),
    slowest: slow.rows.map((x) => ({ at: Number(x.at), latencyMs: x.latency_ms })),
  };
}

/** What the gateway's usage queue binding sent and refused so far (bench/queue-fault.js). */
async function queueStats(controlUrl: string): Promise<QueueStats> {
  const res = await fetch(`${controlUrl}/stats`);
  return (await res.json()) as QueueStats;
}

async function setQueueFault(controlUrl: string, on: boolean): Promise<void> {
  const res = await fetch(`${controlUrl}/fault?on=${on ? 1 : 0}`, { method: "POST" });
  if (!res.ok) throw new Error(`queue fault control answered ${res.status}`);
}

/**
 * The fault case: load on a tenant of its own; one second in, the usage queue refuses every send for
 * `faultS` seconds, then accepts again. The producer retries, then spools in UsageSpool, which re-sends
 * from its alarm. Pass: usage rows = proxied requests, and the reconciliation (admission ledger vs
 * usage rows vs outbox) shows no difference.
 */
async function faultCase(o: {
  gatewayUrl: string;
  originUrl: string;
  control: string;
  pool: pg.Pool;
  tenant: { tenant: { id: string }; key: { key: string } };
  faultS: number;
  lua: string;
}): Promise<FaultResult> {
  const path = "/v1/bench/fault";
  const before = await queueStats(o.control);
  const wrkRun = runWrk({
    url: `${o.gatewayUrl}${path}`,
    threads: CFG.threads,
    connections: CFG.connections,
    durationS: o.faultS + 3,
    headers: { Authorization: `Bearer ${o.tenant.key.key}` },
    script: o.lua,
  });
  let faultStart = 0;
  let faultEnd = 0;
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    await setQueueFault(o.control, true);
    faultStart = Date.now();
    await new Promise((r) => setTimeout(r, o.faultS * 1000));
  } finally {
    await setQueueFault(o.control, false);
    faultEnd = Date.now();
  }
  const wrk = await wrkRun;
  // Spooled batches come back on the spool's alarm (1 s, 2 s, 4 s … after the first refusal).
  const reached = (await originCounts(o.originUrl))[path] ?? 0;
  await waitForRows(o.pool, o.tenant.tenant.id, { expected: reached, quietMs: 0, timeoutMs: 120_000 });
  const settled = await waitForRows(o.pool, o.tenant.tenant.id, {
    expected: null,
    quietMs: 3_000,
    timeoutMs: 15_000,
  });
  // Read again now: requests still in flight when wrk stopped reached the origin after the first read.
  const proxied = (await originCounts(o.originUrl))[path] ?? 0;
  const after = await queueStats(o.control);
  const from = new Date(Date.now() - 2 * 3_600_000).toISOString();
  const to = new Date(Date.now() + 2 * 3_600_000).toISOString();
  const res = await fetch(
    `${o.gatewayUrl}/admin/v1/reconciliation?from=${from}&to=${to}&tenant=${o.tenant.tenant.id}`,
    { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
  );
  if (!res.ok) throw new Error(`reconciliation answered ${res.status}: ${await res.text()}`);
  const table = (await res.json()) as {
    differences: number;
    rows: Array<{ admittedRequests: number; usageRows: number }>;
  };
  const admitted = table.rows.reduce((a, r) => a + r.admittedRequests, 0);
  const refusedSends = after.refusedSends - before.refusedSends;
  return {
    faultS: (faultEnd - faultStart) / 1000,
    requests: wrk.requests,
    proxied,
    admitted,
    rows: settled.rows,
    refusedSends,
    refusedEvents: after.refusedEvents - before.refusedEvents,
    queueMessages: after.messages - before.messages,
    drainS: (settled.settledAt - faultEnd) / 1000,
    differences: table.differences,
    pass: refusedSends > 0 && settled.rows === proxied && admitted === proxied && table.differences === 0,
  };
}

async function originCounts(originUrl: string): Promise<Record<string, number>> {
  const res = await fetch(`${originUrl}/__stats`);
  return ((await res.json()) as { counts: Record<string, number> }).counts;
}

/** The postmaster's pid when Postgres runs on this machine and is visible in /proc, else null. */
async function postmasterPid(pool: pg.Pool): Promise<number | null> {
  try {
    const { rows } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const backend = rows[0]?.pid;
    if (!backend) return null;
    const stat = readFileSync(`/proc/${backend}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const comm = readFileSync(`/proc/${ppid}/comm`, "utf8").trim();
    return comm.startsWith("postgres") || comm.startsWith("postmaster") ? ppid : null;
  } catch {
    return null; // PGlite (in this process) or a remote server
  }
}

async function describeMachine(
  db: BenchDatabase,
  postmaster: number | null,
): Promise<Record<string, string>> {
  const version = (cmd: string, args: string[]) => {
    // `wrk -v` exits 1 after printing its version; nginx -v prints to stderr.
    const out = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
    return `${out.stdout ?? ""}${out.stderr ?? ""}`.split("\n")[0]?.trim() || "?";
  };
  const cpuModel = cpus()[0]?.model ?? "?";
  const pkg = (name: string) => {
    try {
      return (
        JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, "utf8")) as { version: string }
      ).version;
    } catch {
      return "?";
    }
  };
  return {
    nproc: String(cpus().length),
    CPU: cpuModel,
    memory: `${fmt(totalmem() / 2 ** 30, 1)} GiB`,
    kernel: `Linux ${release()}`,
    Node: process.version,
    workerd: `${pkg("workerd")} (via miniflare ${pkg("miniflare")}, wrangler ${pkg("wrangler")})`,
    nginx: version("nginx", ["-v"]).replace(/^nginx version:\s*/, ""),
    wrk: version("wrk", ["-v"]).replace(/\s*Copyright.*$/, ""),
    Postgres: `${db.version}${db.kind === "server" ? ` (server on 127.0.0.1, fresh database${postmaster ? "" : ", CPU not visible"})` : " (embedded)"}`,
    "Durable Object / KV / queue storage":
      CFG.doStorage === "tmpfs" && existsSync("/dev/shm") ? "tmpfs (/dev/shm)" : "disk",
    "load average (start)": loadavg()
      .map((v) => v.toFixed(2))
      .join(" "),
  };
}

function keepLogs(dir: string): void {
  const dest = `${RESULTS_DIR}/logs`;
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  for (const name of readdirSync(dir, { withFileTypes: true }))
    if (name.isFile()) copyFileSync(`${dir}/${name.name}`, `${dest}/${name.name}`);
}

if (flags["report-only"]) {
  const results = JSON.parse(readFileSync(`${RESULTS_DIR}/latest.json`, "utf8")) as BenchResults;
  const markdown = renderMarkdown(results);
  writeIntoDoc(DOC, markdown);
  console.log(markdown);
} else
  main().catch(async (err: unknown) => {
    if (interrupted) return; // the signal handler cleans up and exits
    console.error(`\nnpm run bench failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    await cleanup();
    console.error("logs: bench/results/logs/");
    process.exit(1);
  });
