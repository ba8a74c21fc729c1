/**
 * First middleware: gives every request a sortable `req_` id; stamps every response — proxied,
 * gateway-made or error — with `X-Request-ID`, `X-Response-Time` and `Server-Timing` (`auth`,
 * `admit`, `origin` when they ran, and `total`); and writes exactly one `request` log line per
 * request with the fixed fields of workers/log.ts.
 * A client-sent X-Request-ID is ignored: ids in our logs and usage rows are ours.
 *
 * Why our own timers rather than `hono/timing`: the log line needs the numbers, and hono/timing
 * keeps only the formatted header strings.
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { AppEnv, Timings } from "../env";
import { log, sampled } from "../log";
import { newId } from "../shared/ids";
import { countBytes } from "./byte-counter";

/** Workers' clock only advances across I/O, which is exactly the time we want to report. */
const since = (start: number) => Math.round(performance.now() - start);

export const requestId = () =>
  createMiddleware<AppEnv>(async function requestId(c, next) {
    c.set("requestId", newId("req"));
    c.set("startedAt", performance.now());
    c.set("timings", {});
    await next();
    const elapsed = since(c.get("startedAt"));
    c.res.headers.set("x-request-id", c.get("requestId"));
    c.res.headers.set("x-response-time", `${elapsed}ms`);
    c.res.headers.append("server-timing", serverTiming(c.get("timings"), elapsed));
    logRequest(c, elapsed);
  });

/** `auth;dur=2, admit;dur=5, origin;dur=31, total;dur=40`: the steps that ran, in request order. */
export function serverTiming(timings: Timings, total: number): string {
  const parts: string[] = [];
  for (const step of ["auth", "admit", "origin"] as const) {
    const dur = timings[step];
    if (dur !== undefined) parts.push(`${step};dur=${Math.round(dur)}`);
  }
  parts.push(`total;dur=${total}`);
  return parts.join(", ");
}

/**
 * Times a middleware of the proxy chain as `step` (time spent in it, not downstream of it), for
 * `Server-Timing` and the log line. Wraps the middleware from outside, so the timed files stay as
 * they are. Two `performance.now()` calls per step; no I/O.
 */
export function timed(step: keyof Timings, middleware: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return async function timedStep(c, next) {
    const start = performance.now();
    let downstream = 0;
    try {
      return await middleware(c, async () => {
        const before = performance.now();
        try {
          await next();
        } finally {
          downstream += performance.now() - before;
        }
      });
    } finally {
      const timings = c.get("timings");
      timings[step] = (timings[step] ?? 0) + (performance.now() - start - downstream);
    }
  };
}

/** Records the origin's time to response headers. */
export function recordOriginTime(c: Context<AppEnv>, start: number): void {
  c.get("timings").origin = performance.now() - start;
}

const declaredLength = (headers: Headers): number | undefined => {
  const value = headers.get("content-length");
  return value !== null && /^\d+$/.test(value) ? Number(value) : undefined;
};

/** The gateway endpoint's route pattern (`/admin/v1/plans/:id`), when one matched; not a catch-all. */
function gatewayRoute(c: Context<AppEnv>): string | undefined {
  const matched = routePath(c);
  return matched && matched !== "*" && !matched.endsWith("/*") ? matched : undefined;
}

/**
 * The one line per request. `ok` lines are sampled (`LOG_SAMPLE_RATE`); a gateway error (any
 * problem code) is always written, at `error` for a 5xx (at `warn` for a shed request). The line waits (waitUntil) for bodies of
 * unknown length to finish so `bytes_in`/`bytes_out` are what crossed the wire: a proxied request's
 * counts come from the proxy (c.get("bytes")); a gateway-made body without Content-Length is counted
 * here (admin, tenant API and rejections only — the proxied hot path is never re-wrapped).
 */
function logRequest(c: Context<AppEnv>, elapsed: number): void {
  const code = c.get("problemCode") ?? "ok";
  if (code === "ok" && !sampled()) return;
  const auth = c.get("auth") as AppEnv["Variables"]["auth"] | undefined;
  const originMs = c.get("timings").origin;
  const fields = {
    request_id: c.get("requestId"),
    tenant_id: auth?.key.tenantId,
    key_id: auth?.key.keyId,
    route: c.get("route")?.prefix ?? gatewayRoute(c),
    method: c.req.method,
    status: c.res.status,
    code,
    latency_ms: elapsed,
    origin_ms: originMs === undefined ? undefined : Math.round(originMs),
  };
  const write = (bytesIn: number, bytesOut: number) => {
    const line = { ...fields, bytes_in: bytesIn, bytes_out: bytesOut };
    // A shed request (503 origin_overloaded) is fair shedding doing its job: a warning, not an error.
    if (code === "origin_overloaded") log.warn("request", line);
    else if (c.res.status >= 500) log.error("request", line);
    else log.info("request", line);
  };

  let bytes = c.get("bytes");
  if (!bytes) {
    const bytesIn = Promise.resolve(declaredLength(c.req.raw.headers) ?? 0);
    const declared = declaredLength(c.res.headers);
    let bytesOut: Promise<number>;
    if (!c.res.body || c.req.method === "HEAD") bytesOut = Promise.resolve(0);
    else if (declared !== undefined) bytesOut = Promise.resolve(declared);
    else {
      const counted = countBytes(c.res.body);
      c.res = new Response(counted.readable, c.res);
      bytesOut = counted.done;
    }
    bytes = { in: bytesIn, out: bytesOut };
  }
  c.executionCtx.waitUntil(
    Promise.all([bytes.in, bytes.out]).then(
      ([bytesIn, bytesOut]) => write(bytesIn, bytesOut),
      (error: unknown) =>
        log.error("request log failed", { request_id: c.get("requestId"), error: String(error) }),
    ),
  );
}
