/**
 * Case (b2): the floor of an exact limiter. The pass-through of case (b) plus one RPC per request to
 * a SQLite-backed Durable Object that does the least an exact per-tenant limiter must do: one read
 * and one upsert of a counter, in one synchronous method. The gateway makes exactly this many object
 * calls per admitted request (one), so gateway ÷ (b2) is the cost of everything else it does.
 */
import { DurableObject } from "cloudflare:workers";
import passthrough from "./passthrough-worker.js";

export class Counter extends DurableObject {
  /** @param {DurableObjectState} ctx @param {unknown} env */
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS hits (name TEXT PRIMARY KEY, n INTEGER NOT NULL)");
  }

  /** @param {string} name */
  hit(name) {
    const row = this.sql.exec("SELECT n FROM hits WHERE name = ?", name).toArray()[0];
    const n = (row ? Number(row.n) : 0) + 1;
    this.sql.exec(
      "INSERT INTO hits (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = excluded.n",
      name,
      n,
    );
    return n;
  }
}

export default {
  /** @param {Request} request @param {{ ORIGIN_URL: string, COUNTER: DurableObjectNamespace<Counter> }} env */
  async fetch(request, env) {
    await env.COUNTER.getByName("bench").hit("requests");
    return passthrough.fetch(request, env);
  },
};
