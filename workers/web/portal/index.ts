/**
 * The developer portal, `/portal`: the tenant's developers' own view of their usage, keys, docs
 * and billing. Server-rendered by this Worker; every page passes, in order: the security headers and
 * same-origin check (workers/web/security.ts), a Postgres connection, then — past the public entry
 * pages — the portal session door and the CSRF check. A portal session is bound to one tenant, and
 * every query it makes runs as that tenant (row-level security).
 */
import { Hono, type MiddlewareHandler } from "hono";
import { database } from "../../api/database";
import { auditTrail } from "../../audit/record";
import type { AppEnv } from "../../env";
import { requireSession } from "../require-session";
import { csrfToken, sameOrigin, webHeaders } from "../security";
import { registerPortalBilling } from "./billing";
import { registerPortalDocs } from "./docs";
import { registerPortalEntry, registerPortalLogout } from "./enter";
import { registerPortalKeys } from "./keys";
import { registerPortalOverview } from "./overview";
import { registerPortalSignup } from "./signup";
import { registerPortalUsage } from "./usage";
import { registerPortalWebhooks } from "./webhooks";

/** Mounts the portal on `app`; `bodyLimit` is the API's (forms are small). */
export function registerPortal(app: Hono<AppEnv>, bodyLimit: MiddlewareHandler<AppEnv>): void {
  const portal = new Hono<AppEnv>();
  portal.use("*", ...webHeaders(), sameOrigin(), bodyLimit, database(), auditTrail("portal"));
  registerPortalEntry(portal);
  registerPortalSignup(portal);
  portal.use("*", requireSession("portal", "/portal/signin"), csrfToken());
  registerPortalLogout(portal);
  registerPortalOverview(portal);
  registerPortalKeys(portal);
  registerPortalWebhooks(portal);
  registerPortalBilling(portal);
  registerPortalUsage(portal);
  registerPortalDocs(portal);
  app.route("/portal", portal);
}
