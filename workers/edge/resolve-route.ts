/**
 * Finds the route-table entry for a proxied request, after refusing paths that could mean
 * something different to the origin than to us: encoded slashes, backslashes or dots, empty
 * segments, and `;` path parameters, raw or encoded — a servlet-style origin strips `;…` from each
 * segment, so `/v1/..;/admin/v1/plans` (which the URL parser leaves alone) would resolve there to
 * `/admin/v1/plans`. (The URL parser has already resolved plain `..`; the checks are on the raw path.)
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { matchRoute } from "./route-table";

const AMBIGUOUS_PATH = /%2f|%5c|%2e|%00|%3b|;|\\|\/\//i;

/** The raw path as the client sent it (before any decoding), without the query. */
function rawPath(url: string): string {
  const afterScheme = url.indexOf("//") + 2;
  const pathStart = url.indexOf("/", afterScheme);
  if (pathStart < 0) return "/";
  const end = url.search(/[?#]/);
  return url.slice(pathStart, end < 0 ? undefined : end);
}

export const resolveRoute = () =>
  createMiddleware<AppEnv>(async function resolveRoute(c, next) {
    const path = rawPath(c.req.url);
    if (AMBIGUOUS_PATH.test(path)) {
      throw new GatewayError(
        "bad_request",
        "The request path contains encoded separators, path parameters (;) or empty segments.",
      );
    }
    const route = matchRoute(c.get("config").routes, path);
    if (!route) throw new GatewayError("not_found", "No API route matches this path.");
    c.set("route", route);
    await next();
  });
