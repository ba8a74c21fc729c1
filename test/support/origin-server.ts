/**
 * The origin the gateway proxies to in tests: a Node HTTP server that records every request (except the
 * `/__` control paths) and answers by path: `/slow`, `/stream`, `/redirect`, else a JSON echo.
 * Paths match anywhere, since the gateway may prepend a base such as `/sandbox`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";

/** One request as the origin saw it. */
export interface OriginCall {
  method: string;
  /** Path with query string. */
  path: string;
  /** Lower-cased names; repeated headers joined by ", ". */
  headers: Record<string, string>;
  body: string;
}

/** A running origin: its base URL (`http://127.0.0.1:<port>`) and how to stop it. */
export interface OriginServer {
  url: string;
  stop(): Promise<void>;
}

/** Starts the test origin on 127.0.0.1 with an OS-assigned port. */
export async function startOriginServer(): Promise<OriginServer> {
  const calls: OriginCall[] = [];
  const server = createServer((req, res) => {
    void handle(req, res, calls).catch(() => res.destroy());
  });
  // Node closes an idle keep-alive connection after 5 s; a workerd fetch that picks that pooled
  // connection at the same moment fails as "Network connection lost" (a 502 the test never meant).
  // Keep idle connections for the whole run so tests that pause between bursts never hit that race.
  server.keepAliveTimeout = 10 * 60_000;
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, stop: () => close(server) };
}

/**
 * An origin that is down: it holds its port for the whole run and drops every connection before a
 * byte is answered. (A port bound and released instead can be handed to another listener later in
 * the run — workerd's, a test server's — which then answers in the dead origin's place.)
 */
export async function startDeadOrigin(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createNetServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, calls: OriginCall[]): Promise<void> {
  const target = req.url ?? "/";
  const url = new URL(target, "http://origin");
  const path = url.pathname;

  if (path.startsWith("/__")) {
    if (path === "/__calls") {
      const contains = url.searchParams.get("contains") ?? "";
      return json(
        res,
        200,
        calls.filter((c) => c.path.includes(contains)),
      );
    }
    return json(res, 404, { error: "unknown control path" });
  }

  const call: OriginCall = {
    method: req.method ?? "GET",
    path: target,
    headers: headersOf(req),
    body: await bodyOf(req),
  };
  calls.push(call);

  if (path.includes("/slow")) {
    await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get("ms") ?? 3000)));
    if (!res.destroyed) json(res, 200, call);
    return;
  }
  if (path.includes("/stream")) {
    res.writeHead(200, { "content-type": "text/plain" });
    for (let i = 0; i < 5; i++) {
      if (res.destroyed) return;
      res.write(`chunk-${i}\n`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    res.end();
    return;
  }
  if (path.includes("/redirect")) {
    res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" }).end();
    return;
  }
  json(res, Number(url.searchParams.get("status") ?? 200), call, {
    "x-origin": "test",
    "keep-alive": "timeout=5",
    "proxy-authenticate": "Basic",
  });
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? "").toLowerCase();
    const value = req.rawHeaders[i + 1] ?? "";
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function close(server: ReturnType<typeof createServer>): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
