/**
 * The origin the gateway proxies to in tests: a Node HTTP server that records every request (except the
 * `/__` control paths) and answers by path: `/slow`, `/stream`, `/openapi.json` (the operator's API
 * reference for the portal's Docs, `?variant=`), `/redirect`, `/mirror/` (a fixed answer, which under
 * `/shadow/` — the shadow origin of test routes — differs on some paths), else a JSON echo.
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
  // Exactly this path: a proxied call that merely ends in /openapi.json (the fuzz suite makes them) is echoed.
  if (path === "/openapi.json") {
    openApiDocument(res, url.searchParams.get("variant") ?? "");
    return;
  }
  if (path.includes("/mirror/")) {
    await mirror(res, path, url);
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

/**
 * A fixed answer, the same from the primary and the shadow (`/shadow/…`) except: `/mirror/status`
 * (the shadow answers 503), `/mirror/body` (another body), `/mirror/header` (another `x-variant`),
 * `/mirror/hang` (the shadow answers only after `?ms=`, default 10 s).
 */
async function mirror(res: ServerResponse, path: string, url: URL): Promise<void> {
  const shadow = path.startsWith("/shadow/");
  const differs = (what: string) => shadow && path.includes(`/mirror/${what}`);
  if (differs("hang"))
    await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get("ms") ?? 10_000)));
  if (res.destroyed) return;
  res
    .writeHead(differs("status") ? 503 : 200, {
      "content-type": "application/json",
      "x-variant": differs("header") ? "b" : "a",
    })
    .end(JSON.stringify({ mirror: differs("body") ? 2 : 1 }));
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

/** A string a page must show as text: markup if it were ever written raw into HTML. */
const HOSTILE_TEXT = `<img src=x onerror="alert('xss')">`;

/**
 * The operator's OpenAPI document (PORTAL_OPENAPI_URL=/openapi.json), by `variant`: a small valid
 * 3.1 document with hostile strings (default), `big` (1.5 MiB, declared), `big-chunked` (1.5 MiB,
 * no Content-Length), `invalid` (not JSON), `swagger` (Swagger 2.0), `error` (HTTP 500).
 */
function openApiDocument(res: ServerResponse, variant: string): void {
  const big = () =>
    JSON.stringify({ openapi: "3.1.0", info: { title: "x" }, padding: "x".repeat(1.5 * 1024 * 1024) });
  if (variant === "big") {
    res.writeHead(200, { "content-type": "application/json" }).end(big());
  } else if (variant === "big-chunked") {
    res.writeHead(200, { "content-type": "application/json" });
    const text = big();
    for (let at = 0; at < text.length && !res.destroyed; at += 64 * 1024)
      res.write(text.slice(at, at + 64 * 1024));
    res.end();
  } else if (variant === "invalid") {
    res.writeHead(200, { "content-type": "application/json" }).end("openapi: 3.1.0\ninfo: {");
  } else if (variant === "swagger") {
    json(res, 200, { swagger: "2.0", info: { title: "Old" }, paths: {} });
  } else if (variant === "error") {
    json(res, 500, { error: "down" });
  } else {
    json(res, 200, petStore());
  }
}

function petStore(): unknown {
  return {
    openapi: "3.1.0",
    info: { title: "Pet store", version: "1.2.3", description: `Pets. ${HOSTILE_TEXT}` },
    tags: [{ name: `Pets ${HOSTILE_TEXT}` }],
    paths: {
      "/v1/pets": {
        get: {
          tags: [`Pets ${HOSTILE_TEXT}`],
          summary: "List pets",
          description: HOSTILE_TEXT,
          parameters: [
            { name: "limit", in: "query", schema: { type: "integer" }, description: HOSTILE_TEXT },
          ],
          responses: {
            "200": {
              description: "The pets",
              content: {
                "application/json": {
                  schema: { type: "array", items: { $ref: "#/components/schemas/Pet" } },
                },
              },
            },
          },
        },
        post: {
          tags: [`Pets ${HOSTILE_TEXT}`],
          summary: "Add a pet",
          requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/Pet" } } } },
          responses: { "201": { description: "Added" } },
        },
      },
      '/v1/pets/{id}/"><script>alert(1)</script>': {
        delete: {
          summary: "Odd path",
          deprecated: true,
          parameters: [{ name: "id", in: "path" }],
          responses: {},
        },
      },
    },
    components: {
      schemas: {
        Pet: {
          type: "object",
          required: ["name"],
          properties: {
            name: { type: "string", example: HOSTILE_TEXT },
            [HOSTILE_TEXT]: { type: ["string", "null"], enum: [HOSTILE_TEXT, null] },
            parent: { $ref: "#/components/schemas/Pet" },
          },
        },
      },
    },
  };
}
