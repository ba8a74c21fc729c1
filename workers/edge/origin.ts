/**
 * Talking to the origin: which URL, which headers, and how failures map to gateway errors.
 * Bodies are streamed both ways; nothing here buffers a body.
 */
import { configOf } from "../config";
import type { Bindings } from "../env";
import { GatewayError } from "../errors";
import { CLAIMS_HEADER } from "./claims";
import type { Route } from "./route-table";
import { SHADOW_HEADER } from "./shadow";

/**
 * Time to the origin's response headers before a 504: the route's own, else `ORIGIN_TIMEOUT_MS`.
 * Reads the config parsed once per isolate (workers/config.ts); code holding the context can read
 * `c.get("config").originTimeoutMs` directly.
 */
export function originTimeoutMs(env: Bindings, route: Route): number {
  return route.timeoutMs ?? configOf(env).originTimeoutMs;
}

/** Largest request body the gateway proxies (`MAX_BODY_BYTES`, parsed by workers/config.ts). */
export function maxBodyBytes(env: Bindings): number {
  return configOf(env).maxBodyBytes;
}

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones proxies also drop. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/** Client headers the origin must never see: its credentials and anything it could use to impersonate us. */
const CLIENT_ONLY = [
  "authorization",
  "x-api-key",
  CLAIMS_HEADER,
  // Only the gateway marks a shadow copy; a client's own marker never reaches an origin.
  SHADOW_HEADER,
  "x-request-id",
  "host",
  "content-length",
  // A 100-continue handshake is between the client and us; the origin would answer 100 to fetch.
  "expect",
];

/** RFC 9110 §5.6.2 `token`: what a header name the Connection header lists must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Copies headers minus hop-by-hop ones (including any the Connection header names) and `extra`.
 * One native copy, then deletes: iterating a `Headers` from JavaScript crosses into the runtime for
 * every field, which made this the proxy's costliest line in the hot-path profile.
 */
export function forwardableHeaders(source: Headers, extra: readonly string[] = []): Headers {
  const out = new Headers(source);
  for (const name of HOP_BY_HOP) out.delete(name);
  for (const name of extra) out.delete(name);
  const connection = source.get("connection");
  if (connection !== null)
    for (const listed of connection.split(",")) {
      const name = listed.trim();
      if (TOKEN.test(name)) out.delete(name);
    }
  return out;
}

/** Headers for the origin request: the client's, minus credentials and hop-by-hop, plus ours. */
export function originRequestHeaders(client: Headers, ours: Record<string, string>): Headers {
  const headers = forwardableHeaders(client, CLIENT_ONLY);
  for (const [name, value] of Object.entries(ours)) headers.set(name, value);
  return headers;
}

/** The origin URL for a request path and query. Test keys go to the sandbox origin. */
export function originUrl(
  route: Route,
  env: "live" | "test",
  origins: { live: string; sandbox: string },
  pathAndQuery: string,
): string {
  const base = env === "test" ? (route.sandboxOrigin ?? origins.sandbox) : (route.origin ?? origins.live);
  return base.replace(/\/+$/, "") + pathAndQuery;
}

/**
 * Fetches from the origin with a timeout on the response headers (a streaming body may take
 * longer), never following redirects (the client gets the 3xx as the origin sent it).
 * Timeout → 504 `origin_timeout`; connection failure → 502 `origin_unavailable`.
 */
export async function fetchOrigin(
  url: string,
  init: RequestInit,
  timeoutMs: number,
  cancel?: AbortSignal,
): Promise<Response> {
  // The runtime's own timer: no JavaScript timer to set and clear on every request.
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
  try {
    const response = await fetch(url, { ...init, redirect: "manual", signal });
    if (response.status < 200) {
      // An interim (1xx) answer is not a response we can relay.
      await response.body?.cancel();
      throw new GatewayError("origin_unavailable", `The origin answered with an interim ${response.status}.`);
    }
    return response;
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    if (timeout.aborted) {
      throw new GatewayError("origin_timeout", `The origin did not answer within ${timeoutMs} ms.`);
    }
    throw new GatewayError("origin_unavailable", "The origin could not be reached.");
  }
}
