/**
 * The operator console, `/console`: tenants, their usage and limits, endpoints, reconciliation and
 * failed deliveries. Same machinery as the portal (workers/web/portal/index.ts): security headers,
 * same-origin check, Postgres, then the console session door (signed in with the admin token) and
 * the CSRF check.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { database } from "../../api/database";
import { auditTrail } from "../../audit/record";
import type { AppEnv } from "../../env";
import { requireSession } from "../require-session";
import { csrfToken, sameOrigin, webHeaders } from "../security";
import { registerConsoleDeadLetters } from "./dead-letters";
import { registerConsoleEndpoints } from "./endpoints";
import { registerConsoleLogin, registerConsoleLogout } from "./login";
import { registerConsoleReconciliation } from "./reconciliation";
import { registerConsoleTenant } from "./tenant";
import { registerConsoleTenants } from "./tenants";

/** Mounts the console on `app`; `bodyLimit` is the API's (forms are small). */
export function registerConsole(app: Hono<AppEnv>, bodyLimit: MiddlewareHandler<AppEnv>): void {
  const pages = new Hono<AppEnv>();
  pages.use("*", ...webHeaders(), sameOrigin(), bodyLimit, database(), auditTrail("console"));
  registerConsoleLogin(pages);
  pages.use("*", requireSession("console", "/console/login"), csrfToken());
  registerConsoleLogout(pages);
  registerConsoleTenants(pages);
  registerConsoleTenant(pages);
  registerConsoleEndpoints(pages);
  registerConsoleReconciliation(pages);
  registerConsoleDeadLetters(pages);
  app.route("/console", pages);
}
