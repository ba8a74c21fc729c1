/**
 * Bench-only producer for the metering throughput run: `POST /produce?n=K&tenant=…&key=…&run=…`
 * sends K valid usage events (the shape of workers/metering/usage-event.ts) to the gateway's own usage
 * queue as the gateway's producer packs them — envelopes `{ v: 2, events }` of up to PER_MESSAGE
 * events (~87 KB, under the producer's 96 KB budget), two messages per sendBatch (≤ 256 KB) — as fast
 * as the queue accepts them, so the real consumer (the gateway Worker's `queue` handler) can be
 * measured apart from the request path. Each event's `ts` is the time its message was built.
 * Answers `{ sent, messages, startedAt, finishedAt }` (ms since the epoch).
 */

const PER_MESSAGE = 300;

/** 26 characters of [0-9a-z], unique per (run, i): the request-id format `req_…` the schema requires. */
function eventId(run, i) {
  return `req_${`${run}`.padStart(8, "0").slice(-8)}${i.toString(36).padStart(18, "0")}`;
}

export default {
  /** @param {Request} request @param {{ USAGE_QUEUE: Queue }} env */
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? 0);
    const tenantId = url.searchParams.get("tenant") ?? "";
    const keyId = url.searchParams.get("key") ?? "";
    const run = (url.searchParams.get("run") ?? "0").toLowerCase().replace(/[^0-9a-z]/g, "");
    if (request.method !== "POST" || !(n > 0) || !tenantId || !keyId)
      return new Response("POST /produce?n=&tenant=&key=&run=\n", { status: 400 });
    const startedAt = Date.now();
    let messages = 0;
    let pair = [];
    for (let i = 0; i < n; i += PER_MESSAGE) {
      const ts = new Date().toISOString();
      const events = [];
      for (let j = i; j < Math.min(n, i + PER_MESSAGE); j++)
        events.push({
          id: eventId(run, j),
          tenantId,
          keyId,
          env: "live",
          method: "GET",
          route: "/v1/",
          status: 200,
          billable: true,
          units: 1,
          bytesIn: 0,
          bytesOut: 52,
          latencyMs: 1,
          ts,
        });
      pair.push({ contentType: "json", body: { v: 2, events } });
      messages++;
      if (pair.length === 2) {
        await env.USAGE_QUEUE.sendBatch(pair);
        pair = [];
      }
    }
    if (pair.length > 0) await env.USAGE_QUEUE.sendBatch(pair);
    return Response.json({ sent: n, messages, startedAt, finishedAt: Date.now() });
  },
};
