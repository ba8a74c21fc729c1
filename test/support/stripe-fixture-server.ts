/**
 * A minimal Stripe fixture for the webhook tests (Node, started by test/global-setup.ts): answers
 * `GET /v1/invoices/:id` and `GET /v1/subscriptions/:id` in Stripe's wire format with whatever
 * object a test put there (`PUT /__fixture/objects`, the object's JSON with its `id`), and
 * `resource_missing` (404) for anything else — the way api.stripe.com answers the gateway's
 * re-reads. It exists because the stand-in (dev/stripe-standin.ts) has no invoices and no
 * subscription status but `active` yet; the webhook tests move onto it once it has them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface StripeFixture {
  url: string;
  stop(): Promise<void>;
}

const READS = /^\/v1\/(invoices|subscriptions)\/([A-Za-z0-9_]+)$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "request-id": `req_fixture_${Date.now()}` });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
}

export async function startStripeFixture(): Promise<StripeFixture> {
  const objects = new Map<string, Record<string, unknown>>();
  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? "/", "http://fixture").pathname;
      if (req.method === "PUT" && path === "/__fixture/objects") {
        const object = await readJson(req);
        objects.set(String(object.id), object);
        return send(res, 200, { ok: true });
      }
      const read = READS.exec(path);
      const object = read && req.method === "GET" ? objects.get(read[2] as string) : undefined;
      if (object && object.object === (read?.[1] === "invoices" ? "invoice" : "subscription")) {
        return send(res, 200, object);
      }
      return send(res, 404, {
        error: {
          type: "invalid_request_error",
          code: "resource_missing",
          param: "id",
          message: `No such object: '${read?.[2] ?? path}'`,
        },
      });
    })().catch(() => res.destroy());
  });
  server.keepAliveTimeout = 10 * 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
