/**
 * Wrong method on one of the gateway's own paths (`/admin/…`, `/gateway/…`, `/health…`, `/webhooks/…`) → 405
 * `method_not_allowed` with an `Allow` header listing what the path takes, instead of falling into
 * the proxy's 404.
 *
 * Hono ships `hono/method-not-allowed`, but it rewrites a 404 *after* the rest of the chain ran —
 * here that is the proxy chain (route table, authentication, admission), which must never run for
 * the gateway's own paths — and it leaves thrown errors alone, which is how every 404 here arrives.
 * So this is the same idea (a trie of the registered routes) as a handler mounted in front of the
 * proxy. A path no route takes (or a method one does) goes on to the proxy as before.
 */
import type { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { TrieRouter } from "hono/router/trie-router";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";

/** The gateway's own path spaces; everything else belongs to the proxy's route table. */
const GATEWAY_PATHS = ["/admin/*", "/gateway/*", "/health", "/health/*", "/webhooks/*"];

/** Call after every gateway endpoint is registered and before the proxy. */
export function registerMethodNotAllowed(app: Hono<AppEnv>): void {
  // Built on the first request, when every route is registered; lives as long as the isolate.
  let router: TrieRouter<string[]> | undefined;
  const methodNotAllowed = createMiddleware<AppEnv>(async function methodNotAllowed(c, next) {
    router ??= methodsByPath(app);
    const allowed = new Set<string>();
    for (const [methods] of router.match("ALL", c.req.path)[0]) for (const m of methods) allowed.add(m);
    if (allowed.size === 0 || allowed.has(c.req.method)) {
      await next();
      return;
    }
    const allow = [...allowed].join(", ");
    throw new GatewayError("method_not_allowed", `${c.req.method} is not allowed here. Allowed: ${allow}.`, {
      headers: { allow },
    });
  });
  for (const path of GATEWAY_PATHS) app.all(path, methodNotAllowed);
}

function methodsByPath(app: Hono<AppEnv>): TrieRouter<string[]> {
  const byPath = new Map<string, Set<string>>();
  for (const route of app.routes) {
    // `ALL` entries are middleware and catch-alls (this handler, the proxy), not endpoints.
    if (route.method === "ALL") continue;
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(route.method);
    // Hono answers HEAD with the GET handler.
    if (route.method === "GET") methods.add("HEAD");
    byPath.set(route.path, methods);
  }
  const router = new TrieRouter<string[]>();
  for (const [path, methods] of byPath) router.add("ALL", path, [...methods].sort());
  return router;
}
