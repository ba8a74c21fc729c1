/**
 * A webhook endpoint for the `stripe listen` tests (Node, not workerd): verifies each POST as the
 * Worker will, with the `stripe` package's `constructEventAsync` (Web Crypto, 300 s tolerance),
 * records what arrived, and answers 200 (400 when the signature does not verify). `answer(id, …)` makes
 * the next deliveries of an event answer other statuses, to exercise retries.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";

export interface Received {
  /** The body exactly as it arrived. */
  raw: string;
  headers: IncomingHttpHeaders;
  /** The verified event's id; null when verification failed. */
  eventId: string | null;
  /** The status this request was answered with. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: Received[];
  /** The ids of the verified events that were answered 2xx, in arrival order. */
  accepted(): string[];
  /** Answers the next deliveries of this event with these statuses, one each (then 200 again). */
  answer(eventId: string, ...statuses: number[]): void;
  /** Holds every answer until the returned function is called (a delivery stays in flight). */
  hold(): () => void;
  /** Resolves when `count` requests have arrived. */
  arrivals(count: number): Promise<void>;
  stop(): Promise<void>;
}

const verifier = new Stripe("sk_test_unused");
const crypto = Stripe.createSubtleCryptoProvider();

/** Verifies a delivery the way the Worker does; throws `StripeSignatureVerificationError` if not genuine. */
export function verify(raw: string, signature: string, secret: string): Promise<Stripe.Event> {
  return verifier.webhooks.constructEventAsync(raw, signature, secret, 300, crypto);
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const received: Received[] = [];
  const scripted = new Map<string, number[]>();
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let held: Promise<void> = Promise.resolve();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const event = await verify(raw, String(req.headers["stripe-signature"]), secret).catch(() => null);
      const status = event ? (scripted.get(event.id)?.shift() ?? 200) : 400;
      received.push({ raw, headers: req.headers, eventId: event?.id ?? null, status });
      for (const w of waiters.filter((w) => received.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      await held;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ received: status < 300 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/stripe`,
    received,
    accepted: () => received.filter((r) => r.eventId && r.status < 300).map((r) => r.eventId as string),
    answer: (eventId, ...statuses) => scripted.set(eventId, statuses),
    hold() {
      let release = () => {};
      held = new Promise<void>((resolve) => {
        release = resolve;
      });
      return release;
    },
    arrivals: (count) =>
      received.length >= count
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ count, resolve })),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
