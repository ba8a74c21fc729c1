/**
 * First middleware: gives every request a sortable `req_` id and stamps every response — proxied,
 * gateway-made or error — with `X-Request-ID`, `X-Response-Time` and `Server-Timing`.
 * A client-sent X-Request-ID is ignored: ids in our logs and usage rows are ours.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { newId } from "../shared/ids";

export const requestId = () =>
  createMiddleware<AppEnv>(async function requestId(c, next) {
    c.set("requestId", newId("req"));
    c.set("startedAt", performance.now());
    await next();
    // Workers' clock only advances across I/O, which is exactly the time we want to report.
    const elapsed = Math.round(performance.now() - c.var.startedAt);
    c.res.headers.set("x-request-id", c.var.requestId);
    c.res.headers.set("x-response-time", `${elapsed}ms`);
    c.res.headers.append("server-timing", `gateway;dur=${elapsed}`);
  });
