/**
 * Opens a Postgres connection for admin and tenant API routes and closes it after the response.
 * Never mounted on the proxy path: the hot path makes 0 Postgres queries.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { openDb } from "../shared/db";

export const database = () =>
  createMiddleware<AppEnv>(async function database(c, next) {
    const handle = openDb(c.env);
    c.set("db", handle.db);
    try {
      await next();
    } finally {
      c.executionCtx.waitUntil(handle.close());
    }
  });
