/**
 * Postgres from inside the Worker: drizzle over @neondatabase/serverless (WebSocket Pool, so
 * transactions work). A Pool must not outlive its request in workerd, so `openDb` is called per
 * request and `close()` is handed to `waitUntil`.
 *
 * Locally, `PG_WS_PROXY` points the driver at our WebSocket→TCP bridge (dev/pg-bridge.ts)
 * in front of a plain Postgres; in production it is unset and Neon's own proxy is used.
 */
import { neonConfig, Pool } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import * as schema from "../../schema";

export type Db = NeonDatabase<typeof schema>;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface DbHandle {
  db: Db;
  close(): Promise<void>;
}

export function openDb(env: { DATABASE_URL: string; PG_WS_PROXY?: string }): DbHandle {
  if (env.PG_WS_PROXY) {
    const proxy = env.PG_WS_PROXY;
    neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    // Required for SCRAM password auth against a plain Postgres.
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 1 });
  // The neon Pool never closes its WebSocket itself; without a listener, the server's
  // hang-up after end() surfaces as an uncaught error in workerd.
  pool.on("error", () => {});
  return {
    db: drizzle(pool, { schema }),
    close: () => pool.end().catch(() => {}),
  };
}

/**
 * Runs `fn` as the tenant: `SET LOCAL ROLE gateway_tenant` plus `app.tenant_id`, so row-level
 * security limits every table to that tenant's rows. Every tenant-facing query goes through here.
 */
export async function withTenant<T>(db: Db, tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return await db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('app.tenant_id', ${tenantId}, true)`);
    await tx.execute(sql`set local role gateway_tenant`);
    return await fn(tx);
  });
}
