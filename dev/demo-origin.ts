/**
 * The friendly JSON API `npm start` puts behind the gateway when no `ORIGIN_URL` is given.
 * `GET /v1/hello` greets the calling tenant (read from the gateway's signed claims); any other path
 * echoes the request. Paths under `/sandbox` are the test-key origin and say so.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A running demo origin: its base URL (`http://127.0.0.1:<port>`) and how to stop it. */
export interface DemoOrigin {
  url: string;
  stop(): Promise<void>;
}

/** Starts the demo origin on 127.0.0.1 (`port` omitted or 0: OS-assigned). */
export async function startDemoOrigin(port = 0): Promise<DemoOrigin> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => respond(req, res));
    req.on("error", () => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function respond(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://demo");
  const sandbox = url.pathname === "/sandbox" || url.pathname.startsWith("/sandbox/");
  const path = sandbox ? url.pathname.slice("/sandbox".length) || "/" : url.pathname;
  const origin = sandbox ? "sandbox" : "live";
  const requestId = req.headers["x-request-id"] ?? null;

  const body =
    req.method === "GET" && path === "/v1/hello"
      ? {
          message: "Hello from the demo origin",
          tenant: tenantFromClaims(req),
          request_id: requestId,
          origin,
        }
      : { method: req.method, path: `${path}${url.search}`, request_id: requestId, origin };
  res.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(body, null, 2)}\n`);
}

/**
 * The tenant slug from the `X-Gateway-Claims` JWT, decoded without verifying the signature (a real
 * origin verifies it with `CLAIMS_SECRET`, see workers/edge/claims.ts). Null when absent or malformed.
 */
function tenantFromClaims(req: IncomingMessage): string | null {
  const payload = String(req.headers["x-gateway-claims"] ?? "").split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { tenant?: unknown };
    return typeof claims.tenant === "string" ? claims.tenant : null;
  } catch {
    return null;
  }
}
