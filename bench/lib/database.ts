/**
 * The benchmark's Postgres: a fresh database `gw_bench_<pid>` on the machine's server when it answers
 * (`BENCH_DATABASE_URL`, else `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/postgres),
 * dropped again at the end; otherwise an in-memory embedded PGlite (correct, but one query at a time:
 * metering numbers from it are not comparable).
 */
import pg from "pg";
import { migrate } from "../../dev/migrate";
import { startPostgres } from "../../dev/postgres";

export interface BenchDatabase {
  url: string;
  kind: "server" | "pglite";
  /** e.g. "PostgreSQL 15.20" */
  version: string;
  stop(): Promise<void>;
}

const DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres";

export async function openBenchDatabase(): Promise<BenchDatabase> {
  const serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_SERVER;
  const admin = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 3_000 });
  let reachable = true;
  try {
    await admin.connect();
  } catch {
    reachable = false;
  }
  if (reachable) {
    const name = `gw_bench_${process.pid}`;
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    await migrate(url.toString());
    return {
      url: url.toString(),
      kind: "server",
      version: await serverVersion(url.toString()),
      stop: async () => {
        const c = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 3_000 });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        } finally {
          await c.end();
        }
      },
    };
  }
  // No server: embedded PGlite, in memory (startPostgres uses DATABASE_URL when set).
  delete process.env.DATABASE_URL;
  const embedded = await startPostgres();
  await migrate(embedded.url);
  return {
    url: embedded.url,
    kind: "pglite",
    version: `PGlite (${await serverVersion(embedded.url)})`,
    stop: embedded.stop,
  };
}

async function serverVersion(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return `PostgreSQL ${rows[0]?.v ?? "?"}`;
  } finally {
    await c.end();
  }
}
