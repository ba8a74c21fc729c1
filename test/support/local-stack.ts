/**
 * The local stack for tests that run a Node program against a live gateway (`npm run reconcile`,
 * `gw`): what `npm start` starts — a fresh embedded Postgres (or a fresh database on `DATABASE_URL`'s
 * server), migrated, the WebSocket bridge, the test origin and `wrangler dev` on a free port with its
 * state in a temp dir — and one `stop()` that tears all of it down in reverse.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { migrate } from "../../dev/migrate";
import { startBridge } from "../../dev/pg-bridge";
import { startPostgres } from "../../dev/postgres";
import { spawnInGroup, waitForOk } from "../../dev/processes";
import { startOriginServer } from "./origin-server";

/** The repository's root directory (with a trailing slash). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A running stack. */
export interface LocalStack {
  /** The gateway's base URL, `http://127.0.0.1:<port>`. */
  base: string;
  /** Postgres, for a test that reads or tampers with rows directly. */
  postgresUrl: string;
  /** Stops everything started, newest first; never throws. */
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts the stack with this admin token; a failure part-way stops what had started, then throws. */
export async function startLocalStack(options: {
  adminToken: string;
  name: string;
  /** A route table of the test's own (`ROUTES`), given the test origin's URL; default wrangler.toml's. */
  routes?: (originUrl: string) => unknown[];
}): Promise<LocalStack> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch((error) => console.error("teardown:", error));
  };
  try {
    const tmp = mkdtempSync(`${tmpdir()}/gw-${options.name}-`);
    stops.push(async () => rmSync(tmp, { recursive: true, force: true }));
    const postgres = await startPostgres({ fresh: true });
    stops.push(postgres.stop);
    await migrate(postgres.url);
    const bridge = await startBridge({ target: postgres.url });
    stops.push(bridge.stop);
    const origin = await startOriginServer();
    stops.push(origin.stop);

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const vars = {
      DATABASE_URL: postgres.url,
      PG_WS_PROXY: bridge.wsProxy,
      ORIGIN_URL: origin.url,
      SANDBOX_ORIGIN_URL: `${origin.url}/sandbox`,
      ADMIN_TOKEN: options.adminToken,
      CLAIMS_SECRET: `${options.name}-test-claims-secret`,
      LOG_LEVEL: "warn",
      ...(options.routes ? { ROUTES: JSON.stringify(options.routes(origin.url)) } : {}),
    };
    const args = ["dev", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", `${tmp}/state`];
    args.push("--inspector-port", String(await freePort()), "--log-level", "warn");
    args.push("--show-interactive-dev-session=false");
    for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
    const wrangler = spawnInGroup(`${ROOT}node_modules/.bin/wrangler`, args, {
      cwd: ROOT,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    });
    stops.push(() => wrangler.stop("SIGTERM"));
    await waitForOk(`${base}/health/live`, { timeoutMs: 40_000, exited: wrangler.exited });
    return { base, postgresUrl: postgres.url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
