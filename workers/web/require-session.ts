/**
 * The door of a face's signed-in pages: a live session of that face, or nothing. A page (GET)
 * without one is sent to the face's sign-in page; anything else gets 401 problem+json. A cookie that
 * names no live session (expired, revoked by logout) is cleared on the way.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { clearSessionCookie, readSession, type SessionKind } from "./session";

export const requireSession = (kind: SessionKind, signInPath: string) =>
  createMiddleware<AppEnv>(async function requireSession(c, next) {
    const active = await readSession(c, c.var.db, kind);
    if (!active) {
      clearSessionCookie(c, kind);
      if (c.req.method === "GET" || c.req.method === "HEAD") return c.redirect(signInPath, 303);
      throw new GatewayError("unauthorized", "Sign in first.");
    }
    c.set("web", active);
    await next();
  });
