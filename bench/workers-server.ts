/**
 * One Workers case of the benchmark, in its own process (so its CPU time — this Node process plus the
 * workerd it spawns — can be sampled apart from everything else): workerd through the Miniflare API.
 *
 * - `passthrough`: bench/passthrough-worker.js, bound to the origin only.
 * - `passthrough-do`: bench/passthrough-do-worker.js, the same plus one SQLite-backed Durable Object
 *   RPC per request (a read and an upsert).
 * - `gateway`: the wrangler-built bundle of the real Worker (`wrangler deploy --dry-run --outdir`),
 *   with the bindings of wrangler.toml as wrangler itself maps them for Miniflare
 *   (`unstable_getMiniflareWorkerOptions`): KV, the SQLite-backed TenantLimiter Durable Object, the
 *   usage queue producer + DLQ + consumer. Vars and secrets as `npm start` passes them, and the
 *   WebSocket→TCP bridge (dev/pg-bridge.ts) in front of Postgres, in this process too.
 *
 * Requests reach the Worker on a direct socket (`unsafeDirectSockets`), not through Miniflare's
 * entry worker, and per-request logging is off: what is measured is workerd running the Worker.
 *
 * In gateway mode the same workerd also runs bench/producer-worker.js (bench-only), a producer on the
 * gateway's usage queue for the metering throughput run; cases (b3) and (b4),
 * bench/metering-floor-worker.ts (bundled to `floorBundleDir`), the pass-through (and (b2)'s object
 * call) plus the gateway's producer on the same queue and spool, served on a direct socket of its own
 * (`floorUrl`); and the gateway's `USAGE_QUEUE` is the
 * wrapped binding bench/queue-fault.js around the real producer: it counts what is sent (messages
 * per proxied request) and refuses sends while the bench's fault case says so. Both are driven through
 * a small control server on loopback (`controlUrl`): `GET /stats`, `POST /fault?on=1|0`.
 *
 * Usage: node --import tsx bench/workers-server.ts '<json WorkersServerConfig>'
 * Prints one JSON line `{"url": "http://127.0.0.1:<port>", "producerUrl": … | null, "controlUrl": … | null,
 * "floorUrl": … | null}` when ready.
 */

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  Log,
  LogLevel,
  type Request as MfRequest,
  Response as MfResponse,
  Miniflare,
  type WorkerOptions,
} from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { startBridge } from "../dev/pg-bridge";

export interface WorkersServerConfig {
  mode: "passthrough" | "passthrough-do" | "gateway";
  originUrl: string;
  /** Where Miniflare keeps KV, Durable Object and queue state (a temp dir the bench removes). */
  persistRoot: string;
  /** gateway: the directory `wrangler deploy --dry-run --outdir` wrote `index.js` to. */
  bundleDir?: string;
  /** gateway: where the bundle of cases (b3) and (b4) is (`metering-floor-worker.js`); unset = neither. */
  floorBundleDir?: string;
  /** gateway: Postgres the Worker (via the bridge) writes to. */
  databaseUrl?: string;
  adminToken?: string;
  claimsSecret?: string;
  /** gateway: vars over wrangler.toml's (the fair-shedding scenario: its routes, SHEDDING). */
  vars?: Record<string, string>;
  /** soak: workerd's inspector on this loopback port, to read its isolates' heaps (bench/lib/heap.ts) */
  inspectorPort?: number;
}

/**
 * Miniflare's log, reduced to what the bench needs: warnings and errors to stderr, and one JSON line
 * on stdout per queue batch the consumer handled (`QUEUE gateway-usage 100/100 (123ms)`: Miniflare's
 * broker delivers one batch at a time and times the consumer's handler).
 */
class BenchLog extends Log {
  constructor() {
    super(LogLevel.INFO);
  }
  override logWithLevel(level: LogLevel, message: string): void {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colours
    const plain = message.replace(/\x1b\[[0-9;]*m/g, "");
    const batch = /QUEUE (\S+) (\d+)\/(\d+)(?: \((\d+)ms\))?/.exec(plain);
    if (batch) {
      const [, queue, acked, total, ms] = batch;
      const line = {
        queueBatch: {
          queue,
          acked: Number(acked),
          total: Number(total),
          ms: Number(ms ?? 0),
          at: Date.now(),
        },
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return;
    }
    if (level <= LogLevel.WARN) super.logWithLevel(level, message);
  }
  protected override log(message: string): void {
    process.stderr.write(`${message}\n`);
  }
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const config = JSON.parse(process.argv[2] ?? "{}") as WorkersServerConfig;
const stops: Array<() => Promise<void>> = [];

/** What the gateway's usage queue binding sent and refused; whether it refuses now (the fault case). */
export interface QueueStats {
  failing: boolean;
  sends: number;
  messages: number;
  events: number;
  refusedSends: number;
  refusedEvents: number;
}
const queueStats: QueueStats = {
  failing: false,
  sends: 0,
  messages: 0,
  events: 0,
  refusedSends: 0,
  refusedEvents: 0,
};

/** The CONTROL service of bench/queue-fault.js: one call per send, answers whether it fails. */
async function queueControl(request: MfRequest): Promise<MfResponse> {
  const { messages, events } = (await request.json()) as { messages: number; events: number };
  if (queueStats.failing) {
    queueStats.refusedSends++;
    queueStats.refusedEvents += events;
  } else {
    queueStats.sends++;
    queueStats.messages += messages;
    queueStats.events += events;
  }
  return MfResponse.json({ fail: queueStats.failing });
}

/**
 * A tenant object's lease-mode totals and its ledger's admitted requests (bench/lib/leased.ts: object
 * calls per admitted request), read over RPC through Miniflare.
 */
async function tenantCalls(mf: Miniflare, tenantId: string) {
  const ns = await mf.getDurableObjectNamespace("TENANT", "gateway");
  const stub = ns.get(ns.idFromName(tenantId)) as unknown as {
    leaseTotals(): Promise<{ calls: number; requests: number }>;
    ledger(from: number, to: number): Promise<Array<{ requests: number }>>;
  };
  const [totals, hours] = await Promise.all([stub.leaseTotals(), stub.ledger(0, Date.now() + 3_600_000)]);
  return { ...totals, ledgerRequests: hours.reduce((n, h) => n + h.requests, 0) };
}

/** Loopback control server for the bench: `GET /stats`, `POST /fault?on=1|0`, `GET /tenant-calls?tenant=…`. */
async function startControl(mf: Miniflare): Promise<string> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://control");
    if (req.method === "GET" && url.pathname === "/tenant-calls") {
      tenantCalls(mf, url.searchParams.get("tenant") ?? "").then(
        (calls) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(calls)),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
      return;
    }
    if (req.method === "POST" && url.pathname === "/fault")
      queueStats.failing = url.searchParams.get("on") === "1";
    else if (!(req.method === "GET" && url.pathname === "/stats")) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(queueStats));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<void> {
  const worker =
    config.mode === "gateway"
      ? await gatewayWorker()
      : config.mode === "passthrough-do"
        ? passthroughDoWorker()
        : passthroughWorker();
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    logRequests: false,
    log: new BenchLog(),
    defaultPersistRoot: config.persistRoot,
    ...(config.inspectorPort ? { inspectorPort: config.inspectorPort, inspectorHost: "127.0.0.1" } : {}),
    // workerd's own output (the Worker's console.error, runtime warnings) goes to our stderr.
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      stdout.resume();
      stderr.pipe(process.stderr);
    },
    workers: [
      { ...worker, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] },
      ...(config.mode === "gateway" ? [producerWorker(), queueFaultWorker()] : []),
      ...(config.mode === "gateway" && config.floorBundleDir
        ? [meteringFloorWorker(config.floorBundleDir)]
        : []),
    ],
  });
  stops.push(() => mf.dispose());
  await mf.ready;
  const url = (await mf.unsafeGetDirectURL(worker.name)).origin;
  const producerUrl = config.mode === "gateway" ? (await mf.unsafeGetDirectURL("producer")).origin : null;
  const controlUrl = config.mode === "gateway" ? await startControl(mf) : null;
  const floorUrl =
    config.mode === "gateway" && config.floorBundleDir
      ? (await mf.unsafeGetDirectURL("metering-floor")).origin
      : null;
  process.stdout.write(`${JSON.stringify({ url, producerUrl, controlUrl, floorUrl })}\n`);
}

/** gateway mode: bench/queue-fault.js, the wrapped binding the gateway gets as `USAGE_QUEUE`. */
function queueFaultWorker(): WorkerOptions & { name: string } {
  return {
    name: "usage-queue-fault",
    modules: [
      {
        type: "ESModule",
        path: `${ROOT}bench/queue-fault.js`,
        contents: readFileSync(`${ROOT}bench/queue-fault.js`, "utf8"),
      },
    ],
    queueProducers: { QUEUE: { queueName: "gateway-usage" } },
    serviceBindings: { CONTROL: queueControl },
  };
}

/** gateway mode: the bench-only producer (bench/producer-worker.js) on the gateway's usage queue. */
function producerWorker(): WorkerOptions & { name: string } {
  return {
    name: "producer",
    compatibilityDate: "2026-04-26",
    modules: true,
    scriptPath: `${ROOT}bench/producer-worker.js`,
    queueProducers: { USAGE_QUEUE: { queueName: "gateway-usage" } },
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
  };
}

/**
 * gateway mode, cases (b3) and (b4): the pass-through (and one object call) plus the gateway's usage
 * hand-off, bound as the gateway's producer is — `USAGE_QUEUE` through the same counting wrapper,
 * `USAGE_SPOOL` the gateway's spool.
 */
function meteringFloorWorker(bundleDir: string): WorkerOptions & { name: string } {
  return {
    name: "metering-floor",
    compatibilityDate: "2026-04-26",
    compatibilityFlags: ["nodejs_compat"],
    modules: true,
    modulesRoot: bundleDir,
    scriptPath: `${bundleDir}/metering-floor-worker.js`,
    bindings: { ORIGIN_URL: config.originUrl },
    wrappedBindings: { USAGE_QUEUE: "usage-queue-fault" },
    durableObjects: {
      USAGE_SPOOL: { className: "UsageSpool", scriptName: "gateway" },
      // Case (b4)'s object: (b2)'s Counter, in this Worker.
      COUNTER: { className: "Counter", useSQLite: true },
    },
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
  };
}

function passthroughWorker(): WorkerOptions & { name: string } {
  return {
    name: "passthrough",
    compatibilityDate: "2026-04-26",
    compatibilityFlags: ["nodejs_compat"],
    modules: true,
    scriptPath: `${ROOT}bench/passthrough-worker.js`,
    bindings: { ORIGIN_URL: config.originUrl },
  };
}

function passthroughDoWorker(): WorkerOptions & { name: string } {
  return {
    name: "passthrough-do",
    compatibilityDate: "2026-04-26",
    compatibilityFlags: ["nodejs_compat"],
    // It imports the pass-through's fetch: both files as ES modules (Miniflare would parse the import as a script).
    modules: ["passthrough-do-worker.js", "passthrough-worker.js"].map((file) => ({
      type: "ESModule" as const,
      path: `${ROOT}bench/${file}`,
      contents: readFileSync(`${ROOT}bench/${file}`, "utf8"),
    })),
    bindings: { ORIGIN_URL: config.originUrl },
    durableObjects: { COUNTER: { className: "Counter", useSQLite: true } },
  };
}

async function gatewayWorker(): Promise<WorkerOptions & { name: string }> {
  if (!config.bundleDir || !config.databaseUrl)
    throw new Error("gateway mode needs bundleDir and databaseUrl");
  const bridge = await startBridge({ target: config.databaseUrl });
  stops.push(bridge.stop);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(`${ROOT}wrangler.toml`);
  const scriptPath = `${config.bundleDir}/index.js`;
  // USAGE_QUEUE becomes the counting, fault-injecting wrapper (bench/queue-fault.js) around the same queue.
  const { USAGE_QUEUE: _wrapped, ...queueProducers } = (workerOptions.queueProducers ?? {}) as Record<
    string,
    unknown
  >;
  // The web faces' static files (`[assets]`) are left out: Miniflare serves them through a router
  // Worker in front of the gateway, one more service hop on every request (measured with --quick:
  // 1,200 → 505 req/s, CPU 962 → 2,404 ms per 1k), where Cloudflare matches assets in its edge before
  // the Worker runs. The pass-through case has no assets either: the ratio compares the Workers alone.
  const { assets: _assets, ...rest } = workerOptions as WorkerOptions & { assets?: unknown };
  return {
    ...(rest as WorkerOptions),
    queueProducers: queueProducers as WorkerOptions["queueProducers"],
    wrappedBindings: { USAGE_QUEUE: "usage-queue-fault" },
    name: "gateway",
    modules: true,
    modulesRoot: config.bundleDir,
    scriptPath,
    bindings: {
      ...(workerOptions.bindings ?? {}),
      DATABASE_URL: config.databaseUrl,
      PG_WS_PROXY: bridge.wsProxy,
      ORIGIN_URL: config.originUrl,
      SANDBOX_ORIGIN_URL: `${config.originUrl}/sandbox`,
      ADMIN_TOKEN: config.adminToken ?? "bench-admin-token",
      CLAIMS_SECRET: config.claimsSecret ?? "bench-claims-secret",
      ...config.vars,
    },
  } as WorkerOptions & { name: string };
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const fn of stops.reverse()) await fn().catch(() => {});
  process.exit(code);
}
process.on("SIGTERM", () => void stop(0));
process.on("SIGINT", () => void stop(0));
// The bench closes our stdin when it goes away (even if it is SIGKILLed): never outlive it.
process.stdin.on("end", () => void stop(0));
process.stdin.resume();

main().catch((err: unknown) => {
  console.error(
    `workers-server (${config.mode}): ${err instanceof Error ? (err.stack ?? err.message) : err}`,
  );
  void stop(1);
});
