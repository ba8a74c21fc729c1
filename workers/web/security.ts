/**
 * What every portal and console response carries, and what every state-changing request must show.
 * - Headers (hono's `secureHeaders`): a Content-Security-Policy with no inline script and no other
 *   origin (every script and style is served from `/_static/`, so the pages work offline),
 *   `frame-ancestors 'none'` (no clickjacking), no referrer (a one-time link's code never leaks
 *   through a Referer), `nosniff`; plus `Cache-Control: no-store`, since pages show keys once.
 * - CSRF, two independent checks on every POST: hono's `csrf` (the browser's `Origin` /
 *   `Sec-Fetch-Site` must be this origin) and, once signed in, the session's CSRF value in the form's
 *   `_csrf` field or the `X-CSRF-Token` header (workers/web/session.ts).
 */

import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { timingSafeEqual } from "../shared/timing-safe";

/** Security headers of every web page. */
export const webHeaders = () => [
  secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    // The portal is same-origin only; the console never embeds anything either.
    crossOriginResourcePolicy: "same-origin",
  }),
  createMiddleware<AppEnv>(async function noStore(c, next) {
    await next();
    c.res.headers.set("cache-control", "no-store");
  }),
];

/**
 * The Origin / Sec-Fetch-Site check on unsafe methods, before any session exists (sign-in forms
 * too: no login CSRF). The request URL's origin is the public one behind Cloudflare, and the dev
 * server's locally. A refusal is a 403 (`forbidden` in app.ts's mapping of hono's exceptions).
 */
export const sameOrigin = () => csrf();

/**
 * The synchronizer check, after the session middleware: a POST must carry the session's CSRF value.
 * Multipart and urlencoded bodies are parsed once here (hono caches the parse for the handler).
 */
export const csrfToken = () =>
  createMiddleware<AppEnv>(async function csrfToken(c, next) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return await next();
    const expected = c.var.web?.csrf;
    let sent = c.req.header("x-csrf-token");
    if (sent === undefined) {
      const type = c.req.header("content-type") ?? "";
      if (/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) {
        const field = (await c.req.parseBody())._csrf;
        if (typeof field === "string") sent = field;
      }
    }
    if (!expected || !sent || !(await timingSafeEqual(sent, expected))) {
      throw new GatewayError(
        "forbidden",
        "The form has expired or did not come from this site. Reload the page and try again.",
      );
    }
    await next();
  });
