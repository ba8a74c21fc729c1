/** `/health` and `/health/live` (the Worker answers) and `/health/ready` (Postgres answers too). */

import { sql } from "drizzle-orm";
import type { Hono } from "hono";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import { openDb } from "../shared/db";

const READY_TIMEOUT_MS = 3_000;

export function registerHealth(app: Hono<AppEnv>): void {
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/health/live", (c) => c.json({ status: "ok" }));
  app.get("/health/ready", async (c) => {
    const handle = openDb(c.env);
    const started = performance.now();
    try {
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("timed out")), READY_TIMEOUT_MS),
      );
      await Promise.race([handle.db.execute(sql`select 1`), timeout]);
    } catch (error) {
      log.error("readiness check failed", { request_id: c.var.requestId, error: String(error) });
      throw new GatewayError("service_unavailable", "Postgres is not reachable.");
    } finally {
      c.executionCtx.waitUntil(handle.close());
    }
    return c.json({
      status: "ok",
      checks: { postgres: { status: "ok", latencyMs: Math.round(performance.now() - started) } },
    });
  });
}
