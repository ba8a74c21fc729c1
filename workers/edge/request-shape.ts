/**
 * Refuses, before any lookup or admission (so no token is spent and nothing is metered), request
 * shapes the origin could read differently from us, or that can only end in a misleading 502:
 *
 * - a body on GET or HEAD (RFC 9110 §9.3.1: no defined semantics). `fetch` cannot send one, so it
 *   used to fail at the origin call as a 502 `origin_unavailable` — the client's mistake blamed on
 *   the origin, after a token was spent. Refused with 400 rather than silently dropped: a client
 *   that sends a body expects it to matter. A body is present when the request has any
 *   `Transfer-Encoding` or a non-zero `Content-Length` (RFC 9112 §6.3), or, without either, a stream;
 * - a header name outside the RFC 9110 §5.6.2 token set (the runtime accepts some, e.g. bytes
 *   ≥ 0x80), or a header value with a control character other than HTAB (RFC 9110 §5.5: CR, LF and
 *   NUL are already refused by the runtime; the others — and what is left of an obs-fold — reach an
 *   origin's parser, which may split or truncate the field where we did not).
 *
 * Cost: one pass over the request headers with two precompiled regexes, no allocation; no I/O.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";

/** RFC 9110 §5.6.2 `token`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** C0 controls except HTAB, and DEL. obs-text (0x80-0xFF) is allowed, as RFC 9110 allows it. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Why the request is refused, or null. Pure: unit-testable without a runtime. */
export function hostileShape(method: string, headers: Headers, hasBody: boolean): string | null {
  if (method === "GET" || method === "HEAD") {
    // A declared `Content-Length: 0` is no body, even where the runtime hands over an empty stream.
    const length = headers.get("content-length");
    const announced = length !== null ? !/^0+$/.test(length) : hasBody;
    if (announced || headers.has("transfer-encoding")) {
      return `A ${method} request cannot carry a body.`;
    }
  }
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) return "A header name contains characters outside the HTTP token set.";
    if (CONTROL.test(value)) return `The ${name} header contains a control character.`;
  }
  return null;
}

export const requestShape = () =>
  createMiddleware<AppEnv>(async function requestShape(c, next) {
    const problem = hostileShape(c.req.method, c.req.raw.headers, c.req.raw.body !== null);
    if (problem) throw new GatewayError("bad_request", problem);
    await next();
  });
