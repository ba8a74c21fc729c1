/**
 * One Workers case of the benchmark, in its own process (so its CPU time — this Node process plus the
 * workerd it spawns — can be sampled apart from everything else): workerd through the Miniflare API.
 *
 * - `passthrough`: bench/passthrough-worker.js, bound to the origin only.
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
 * gateway's usage queue for the metering throughput run.
 *
 * Usage: node --import tsx bench/workers-server.ts '<json WorkersServerConfig>'
 * Prints one JSON line `{"url": "http://127.0.0.1:<port>", "producerUrl": … | null}` when ready.
 */
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { startBridge } from "../dev/pg-bridge";

export interface WorkersServerConfig {
  mode: "passthrough" | "gateway";
  originUrl: string;
  /** Where Miniflare keeps KV, Durable Object and queue state (a temp dir the bench removes). */
  persistRoot: string;
  /** gateway: the directory `wrangler deploy --dry-run --outdir` wrote `index.js` to. */
  bundleDir?: string;
  /** gateway: Postgres the Worker (via the bridge) writes to. */
  databaseUrl?: string;
  adminToken?: string;
  claimsSecret?: string;
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

async function main(): Promise<void> {
  const worker = config.mode === "gateway" ? await gatewayWorker() : passthroughWorker();
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    logRequests: false,
    log: new BenchLog(),
    defaultPersistRoot: config.persistRoot,
    // workerd's own output (the Worker's console.error, runtime warnings) goes to our stderr.
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      stdout.resume();
      stderr.pipe(process.stderr);
    },
    workers: [
      { ...worker, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] },
      ...(config.mode === "gateway" ? [producerWorker()] : []),
    ],
  });
  stops.push(() => mf.dispose());
  await mf.ready;
  const url = (await mf.unsafeGetDirectURL(worker.name)).origin;
  const producerUrl = config.mode === "gateway" ? (await mf.unsafeGetDirectURL("producer")).origin : null;
  process.stdout.write(`${JSON.stringify({ url, producerUrl })}\n`);
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

async function gatewayWorker(): Promise<WorkerOptions & { name: string }> {
  if (!config.bundleDir || !config.databaseUrl)
    throw new Error("gateway mode needs bundleDir and databaseUrl");
  const bridge = await startBridge({ target: config.databaseUrl });
  stops.push(bridge.stop);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(`${ROOT}wrangler.toml`);
  const scriptPath = `${config.bundleDir}/index.js`;
  return {
    ...(workerOptions as WorkerOptions),
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
