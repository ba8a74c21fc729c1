/**
 * A tiny Stripe events API for the `stripe listen` tests (Node, not workerd): `GET /v1/events` in
 * Stripe's list format — newest first, `limit` (1–100, default 10), `starting_after` /
 * `ending_before` (the page next to the cursor, towards older / newer), `created[gt]`, `has_more` —
 * over events the test adds. Bearer auth with one key; `down(true)` answers 500. Counts the list requests it answers.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type Stripe from "stripe";

export interface EventsSource {
  url: string;
  key: string;
  /** Every event, oldest first. */
  events: Stripe.Event[];
  /** Adds an event (created now, or at `created` unix seconds) and returns it. */
  add(type: string, object?: Record<string, unknown>, created?: number): Stripe.Event;
  /** While down, every request is answered 500 as Stripe answers an outage. */
  down(on: boolean): void;
  /** `GET /v1/events` requests answered. */
  reads(): number;
  stop(): Promise<void>;
}

export async function startEventsSource(key = "sk_test_listen"): Promise<EventsSource> {
  const events: Stripe.Event[] = [];
  let reads = 0;
  let seq = 0;
  let down = false;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://source");
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    req.resume();
    if (down) {
      send(500, { error: { type: "api_error", message: "The events source is down (test)" } });
      return;
    }
    if (req.headers.authorization !== `Bearer ${key}`) {
      send(401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
      return;
    }
    if (req.method !== "GET" || url.pathname !== "/v1/events") {
      send(404, { error: { type: "invalid_request_error", message: "Unrecognized request URL" } });
      return;
    }
    reads++;
    send(200, listPage(events, url.searchParams));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    key,
    events,
    add(type, object = { id: `obj_${seq + 1}`, object: "invoice" }, created = Math.floor(Date.now() / 1000)) {
      seq++;
      const event = {
        id: `evt_${String(seq).padStart(6, "0")}${Math.random().toString(36).slice(2, 10)}`,
        object: "event",
        api_version: "2025-03-31.basil",
        created,
        data: { object },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type,
      } as unknown as Stripe.Event;
      events.push(event);
      return event;
    },
    down: (on) => {
      down = on;
    },
    reads: () => reads,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One page of `GET /v1/events`: `all` is oldest first, the list newest first. */
function listPage(all: Stripe.Event[], q: URLSearchParams) {
  const limit = Math.min(100, Math.max(1, Number(q.get("limit") ?? 10)));
  const gt = q.get("created[gt]");
  const newestFirst = [...all].reverse().filter((e) => gt === null || e.created > Number(gt));
  const after = q.get("starting_after");
  const before = q.get("ending_before");
  let data: Stripe.Event[];
  let hasMore: boolean;
  if (before) {
    const at = newestFirst.findIndex((e) => e.id === before);
    const newer = newestFirst.slice(0, Math.max(0, at));
    data = newer.slice(-limit);
    hasMore = newer.length > limit;
  } else {
    const at = after ? newestFirst.findIndex((e) => e.id === after) + 1 : 0;
    const older = newestFirst.slice(at);
    data = older.slice(0, limit);
    hasMore = older.length > limit;
  }
  return { object: "list", url: "/v1/events", has_more: hasMore, data };
}
