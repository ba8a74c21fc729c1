/**
 * Cases (b3) and (b4). (b3): the pass-through (b) plus the gateway's own usage hand-off — what DESIGN's metering
 * contract ("after the response, `waitUntil` hands the usage event to the Queue … never dropped")
 * costs on this runtime before any other gateway work. Each request is fetched from the origin as (b)
 * fetches it, and its usage event goes through the gateway's real producer
 * (workers/metering/producer.ts: the isolate's batcher, the `waitUntil` that keeps the request until
 * its batch is on the queue, retries, spool) to the gateway's usage queue, whose real consumer (the
 * gateway Worker in the same workerd) stores it in Postgres. No key check, no tenant object, no
 * claims, no headers of its own: the floor of a leased tenant, which makes no object call per request.
 *
 * Case (b4), the same Worker with `x-bench-object: 1`: first the one object RPC of case (b2) (its
 * Counter class, exported from here), then as (b3). The floor of a default-mode tenant, which makes
 * one object call per admitted request: the gateway's target is 0.85× (b2).
 *
 * The events are charged to the tenant and key in `x-bench-tenant` and `x-bench-key` (seeded by the
 * bench, so the rows meet their foreign keys and are counted like the gateway's). Bundled by
 * `wrangler deploy --dry-run` (bench/metering-floor.wrangler.toml), run by bench/workers-server.ts.
 */
import { sendUsageEvent, type UsageProducerEnv } from "../workers/metering/producer";
import { newId } from "../workers/shared/ids";
import { Counter } from "./passthrough-do-worker.js";

export { Counter };

interface Env extends UsageProducerEnv {
  ORIGIN_URL: string;
  COUNTER: DurableObjectNamespace<Counter>;
}

export default {
  async fetch(request, env, ctx) {
    const started = performance.now();
    const tenantId = request.headers.get("x-bench-tenant");
    const keyId = request.headers.get("x-bench-key");
    if (!tenantId || !keyId)
      return new Response("x-bench-tenant and x-bench-key are required\n", { status: 400 });
    if (request.headers.get("x-bench-object") === "1") await env.COUNTER.getByName("bench").hit("requests");
    const url = new URL(request.url);
    const response = await fetch(`${env.ORIGIN_URL}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
    ctx.waitUntil(
      sendUsageEvent(env, {
        id: newId("req"),
        tenantId,
        keyId,
        env: "live",
        method: request.method,
        route: "/v1/",
        status: response.status,
        billable: response.status < 500,
        units: 1,
        bytesIn: 0,
        bytesOut: Number(response.headers.get("content-length") ?? 0),
        latencyMs: Math.round(performance.now() - started),
        ts: new Date().toISOString(),
      }),
    );
    return response;
  },
} satisfies ExportedHandler<Env>;
