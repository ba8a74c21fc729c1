/**
 * The local stack for the real-browser tests, started exactly as `npm start` starts it: the process
 * `scripts/start.ts` (under tsx), on a free port, with its state in a fresh folder (`STATE_DIR`) and
 * a known admin token. With `DATABASE_URL` set, the stack gets a fresh database on that server (made
 * here, dropped at the end) instead of the embedded PGlite. Its output goes to a log file, and the
 * ready banner is what says it is up.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PostgresHandle, startPostgres } from "../../dev/postgres";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** wrangler dev's first start (bundling, workerd) plus PGlite and migrations; generous for 2 shared cores. */
const READY_TIMEOUT_MS = 180_000;

/** A running stack. */
export interface Stack {
  /** `http://127.0.0.1:<port>`, the origin every page and API call uses. */
  base: string;
  adminToken: string;
  /** The demo tenant and key `npm start` seeded. */
  demo: { tenantId: string; key: string };
  /** "embedded PGlite" or "PostgreSQL server (fresh database …)". */
  database: string;
  /**
   * The first line of start.ts's output (from its start) matching `pattern`, waiting up to `timeoutMs`
   * for it: e.g. the dev mailbox's "Mail to <address>: <link>".
   */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Stops start.ts (which stops wrangler and the rest), then drops the database and the state folder. */
  stop(): Promise<void>;
}

/** Starts `scripts/start.ts`; resolves once its ready banner is printed. Output goes to `logFile`. */
export async function startStack(options: { logFile: string }): Promise<Stack> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const adminToken = `browser-${randomBytes(12).toString("hex")}`;
  const stateDir = await mkdtemp(join(tmpdir(), "gw-browser-"));
  // A server's database is shared with whoever else uses it; start.ts migrates the one it is given,
  // so it gets a throwaway one (dev/postgres.ts: `gw_test_<pid>_<random>`, dropped by stop()).
  const server: PostgresHandle | null = process.env.DATABASE_URL
    ? await startPostgres({ fresh: true })
    : null;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    STATE_DIR: stateDir,
    ADMIN_TOKEN: adminToken,
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG_PATH: `${ROOT}.wrangler/logs`,
  };
  // The run is hermetic: the demo origin, the local Stripe stand-in and the dev mailbox (sign-up on the
  // demo plan), whatever the shell has set.
  for (const name of [
    "ORIGIN_URL",
    "SANDBOX_ORIGIN_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "MAIL_API_KEY",
    "MAIL_API_URL",
    "MAIL_FROM",
    "PORTAL_SIGNUP_PLAN",
  ])
    delete env[name];
  if (server) env.DATABASE_URL = server.url;
  else delete env.DATABASE_URL;

  const log = createWriteStream(options.logFile);
  // `node --import tsx` rather than the tsx CLI: no wrapper process between us and start.ts, so the
  // signal reaches the process that owns the shutdown (it stops wrangler's own process group).
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<string>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? String(code))),
  );
  // If this process dies first, start.ts still shuts its stack down.
  const orphanGuard = () => signal(child, "SIGTERM");
  process.once("exit", orphanGuard);

  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  const ready = new Promise<void>((resolve) => {
    let pending = "";
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString("utf8");
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        for (const watch of watchers) watch(line);
        if (line.includes("Edge gateway ready at")) resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
  });

  const stop = async () => {
    signal(child, "SIGTERM");
    const gone = await Promise.race([exited, delay(30_000).then(() => null)]);
    // start.ts had 30 s to stop its children; whatever is left of its own group goes now.
    if (gone === null) signalGroup(child, "SIGKILL");
    await exited;
    process.removeListener("exit", orphanGuard);
    log.end();
    await server?.stop();
    await rm(stateDir, { recursive: true, force: true });
  };

  const outcome = await Promise.race([
    ready.then(() => "ready"),
    exited.then((how) => `start.ts exited (${how}) before it was ready`),
    delay(READY_TIMEOUT_MS).then(() => `no ready banner within ${READY_TIMEOUT_MS / 1000} s`),
  ]);
  if (outcome !== "ready") {
    await stop();
    throw new Error(
      `The local stack did not start: ${outcome}. Its last lines:\n${lines.slice(-60).join("\n")}`,
    );
  }
  const demo = JSON.parse(await readFile(join(stateDir, "demo-key.json"), "utf8")) as {
    tenantId: string;
    key: string;
  };
  const database = server
    ? `PostgreSQL server (fresh database ${new URL(server.url).pathname.slice(1)})`
    : "embedded PGlite";
  const waitForLine = (pattern: RegExp, timeoutMs: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const seen = lines.map((line) => line.match(pattern)).find((match) => match !== null);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => {
        watchers.delete(watch);
        reject(new Error(`start.ts printed no line matching ${pattern} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const watch = (line: string) => {
        const match = line.match(pattern);
        if (!match) return;
        clearTimeout(timer);
        watchers.delete(watch);
        resolve(match);
      };
      watchers.add(watch);
    });
  return { base, adminToken, demo, database, waitForLine, stop };
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.exitCode === null && child.signalCode === null) child.kill(name);
}

function signalGroup(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, name);
  } catch {
    // ESRCH: the group is already gone.
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port");
  return address.port;
}
