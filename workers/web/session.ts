/**
 * Web sessions (portal and console): a random token in an httpOnly cookie, its hash in Postgres
 * (schema/web-sessions.ts). Cookie: `HttpOnly`, `SameSite=Lax`, `Secure` everywhere but localhost
 * (browsers refuse Secure cookies over plain http, and `npm start` serves http://127.0.0.1), scoped to
 * the face's path, 24 h. Logout revokes the row, so a copied cookie dies with it.
 *
 * CSRF: besides the Origin / Sec-Fetch-Site check (workers/web/security.ts), every state-changing form
 * carries `csrfToken(token)` — a value derived from the cookie's secret that a page of another origin
 * can neither read nor compute.
 */
import { and, eq, gt, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { sha256Hex } from "../../durable-objects/sha256";
import { type WebSession, webSessions } from "../../schema";
import type { ActiveSession, AppEnv } from "../env";
import { clientIp } from "../shared/client-ip";
import type { Db } from "../shared/db";
import { newId } from "../shared/ids";
import { hashSecretToken, isWellFormedToken, newSecretToken } from "./secret-token";

/** How long a session lasts from sign-in. */
export const SESSION_TTL_MS = 24 * 60 * 60 * 1000;

export type SessionKind = WebSession["kind"];

const COOKIE: Record<SessionKind, { name: string; path: string }> = {
  portal: { name: "gw_portal", path: "/portal" },
  console: { name: "gw_console", path: "/console" },
};

/** localhost and loopback: the only hosts a cookie is sent to without `Secure`. */
function isLocalhost(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
}

/** The CSRF value for a session: SHA-256 of the cookie's secret under a fixed label, hex. */
export const csrfToken = (token: string): Promise<string> => sha256Hex(`csrf:${token}`);

/** Starts a session, sets its cookie. */
export async function startSession(
  c: Context<AppEnv>,
  db: Db,
  input: Pick<WebSession, "kind" | "tenantId" | "via"> & { email?: string | null },
  now = Date.now(),
): Promise<WebSession> {
  const token = newSecretToken();
  const [row] = await db
    .insert(webSessions)
    .values({
      id: newId("wss", now),
      tokenHash: await hashSecretToken(token),
      kind: input.kind,
      tenantId: input.tenantId,
      via: input.via,
      email: input.email ?? null,
      clientIp: clientIp(c),
      userAgent: c.req.header("user-agent")?.slice(0, 256) ?? null,
      createdAt: new Date(now),
      expiresAt: new Date(now + SESSION_TTL_MS),
    })
    .returning();
  const cookie = COOKIE[input.kind];
  setCookie(c, cookie.name, token, {
    path: cookie.path,
    httpOnly: true,
    secure: !isLocalhost(c.req.url),
    sameSite: "Lax",
    maxAge: SESSION_TTL_MS / 1000,
  });
  return row as WebSession;
}

/** The request's live session of that kind, or null (no cookie, unknown, expired or revoked). */
export async function readSession(
  c: Context<AppEnv>,
  db: Db,
  kind: SessionKind,
  now = Date.now(),
): Promise<ActiveSession | null> {
  const token = getCookie(c, COOKIE[kind].name);
  if (!isWellFormedToken(token)) return null;
  const [session] = await db
    .select()
    .from(webSessions)
    .where(
      and(
        eq(webSessions.tokenHash, await hashSecretToken(token)),
        eq(webSessions.kind, kind),
        isNull(webSessions.revokedAt),
        gt(webSessions.expiresAt, new Date(now)),
      ),
    );
  return session ? { session, csrf: await csrfToken(token) } : null;
}

/** Logout: revokes the session (a copy of the cookie stops working too) and clears the cookie. */
export async function endSession(c: Context<AppEnv>, db: Db, session: WebSession, now = Date.now()) {
  await db
    .update(webSessions)
    .set({ revokedAt: new Date(now) })
    .where(eq(webSessions.id, session.id));
  clearSessionCookie(c, session.kind);
}

/** Drops the browser's cookie of that kind (after logout, or when it names no live session). */
export function clearSessionCookie(c: Context<AppEnv>, kind: SessionKind): void {
  deleteCookie(c, COOKIE[kind].name, { path: COOKIE[kind].path, secure: !isLocalhost(c.req.url) });
}
