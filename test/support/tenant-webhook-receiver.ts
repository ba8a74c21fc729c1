/**
 * A tenant's webhook receiver for the delivery tests (Node, started by test/global-setup.ts; the
 * Worker reaches it as `hooksUrl`). Records every request — method, path, headers, the raw body —
 * and answers 200 unless a test scripted its path. Each test uses its own path (`/hooks/<uniq>`),
 * so tests sharing the receiver never see each other's arrivals.
 *
 * - `POST /control/script` `{path, statuses, retryAfter?, location?, delayMs?, body?}`: the next
 *   requests to `path` are answered with `statuses`, one each (then 200 again); `retryAfter` and
 *   `location` are sent as headers with each, `delayMs` holds each answer that long, `body` is the
 *   response body (default `{"received":true}`).
 * - `GET /control/received?path=`: what arrived at `path`, oldest first.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the receiver saw it. */
export interface HookArrival {
  method: string;
  path: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  /** Exactly the bytes that arrived, as UTF-8. */
  body: string;
  /** What the receiver answered. */
  status: number;
  /** When the request arrived (the receiver's clock, epoch ms). */
  at: number;
}

/** How the next requests to one path are answered. */
export interface HookScript {
  path: string;
  statuses: number[];
  retryAfter?: string;
  location?: string;
  delayMs?: number;
  body?: string;
}

export interface TenantWebhookReceiver {
  url: string;
  stop(): Promise<void>;
}

export async function startTenantWebhookReceiver(): Promise<TenantWebhookReceiver> {
  const arrivals: HookArrival[] = [];
  const scripts = new Map<string, HookScript>();
  const server = createServer((req, res) => {
    void handle(req, res, arrivals, scripts).catch(() => res.destroy());
  });
  // As the test origin: keep idle keep-alive connections for the run, so a pooled connection that
  // Node closed after 5 s idle never fails a delivery the test meant to succeed.
  server.keepAliveTimeout = 10 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  arrivals: HookArrival[],
  scripts: Map<string, HookScript>,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://receiver");
  const at = Date.now();
  const body = await bodyOf(req);
  if (url.pathname === "/control/script" && req.method === "POST") {
    const script = JSON.parse(body) as HookScript;
    scripts.set(script.path, { ...script, statuses: [...script.statuses] });
    return json(res, 204);
  }
  if (url.pathname === "/control/received") {
    const path = url.searchParams.get("path") ?? "";
    return json(
      res,
      200,
      arrivals.filter((a) => a.path === path),
    );
  }
  const script = scripts.get(url.pathname);
  const status = script?.statuses.shift() ?? 200;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (script?.retryAfter) headers["retry-after"] = script.retryAfter;
  if (script?.location) headers.location = script.location;
  arrivals.push({ method: req.method ?? "", path: url.pathname, headers: headersOf(req), body, status, at });
  if (script?.delayMs) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
  if (res.destroyed) return;
  res.writeHead(status, headers).end(script?.body ?? JSON.stringify({ received: status < 300 }));
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? "").toLowerCase();
    headers[name] = req.rawHeaders[i + 1] ?? "";
  }
  return headers;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
