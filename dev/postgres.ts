/**
 * The local Postgres for `npm start` and the tests: the server in `DATABASE_URL` when set (optionally a
 * fresh throwaway database on it), else an embedded PGlite served over the wire protocol on 127.0.0.1.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import pg from "pg";
import { keepQueriesWhole } from "./pglite-batches";

/** A running Postgres: its connection URL, whether it is the embedded PGlite, and how to stop it. */
export interface PostgresHandle {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * How many client connections PGlite's multiplexer accepts at once. PGlite itself runs one query at a
 * time (and an open transaction blocks every other connection until it ends); the multiplexer queues
 * the rest. The Worker opens one connection per request, so allow plenty.
 */
const PGLITE_MAX_CONNECTIONS = 256;

/**
 * Starts (or attaches to) Postgres.
 * - `DATABASE_URL` set: that server; with `fresh`, a new database `gw_test_<pid>_<random>` on it,
 *   dropped again by `stop()`.
 * - Otherwise: embedded PGlite on an OS-assigned port, in memory or persisted in `dataDir`.
 */
export async function startPostgres(
  opts: { dataDir?: string; fresh?: boolean } = {},
): Promise<PostgresHandle> {
  const serverUrl = process.env.DATABASE_URL;
  if (serverUrl) {
    return opts.fresh
      ? await createFreshDatabase(serverUrl)
      : { url: serverUrl, embedded: false, stop: async () => {} };
  }
  return await startPglite(opts.dataDir);
}

async function createFreshDatabase(serverUrl: string): Promise<PostgresHandle> {
  const name = `gw_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    embedded: false,
    stop: () =>
      withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)),
  };
}

async function withClient(url: string, fn: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

async function startPglite(dataDir: string | undefined): Promise<PostgresHandle> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({
    db,
    host: "127.0.0.1",
    port: 0,
    maxConnections: PGLITE_MAX_CONNECTIONS,
  });
  keepQueriesWhole(server, db);
  await server.start();
  // After start() this is `127.0.0.1:<actual port>`. PGlite ignores the user and always serves
  // database `postgres`; `pg` and the neon driver both accept this URL (no password needed).
  const hostPort = server.getServerConn();
  return {
    url: `postgres://postgres@${hostPort}/postgres`,
    embedded: true,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
