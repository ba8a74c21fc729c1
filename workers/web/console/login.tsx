/**
 * Signing in to the console with the admin token (once; then a 24 h session cookie, so the token is
 * not kept in the browser), and signing out. The token is compared in constant time, as the admin
 * API does; a wrong one gets the form again with 401.
 */
import type { Hono } from "hono";
import { sessionCreated, sessionRevoked } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { timingSafeEqual } from "../../shared/timing-safe";
import { Notice, Page } from "../layout";
import { endSession, startSession } from "../session";

function LoginForm(props: { error?: string }) {
  return (
    <form method="post" action="/console/login" class="card narrow">
      {props.error && <Notice kind="error">{props.error}</Notice>}
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required />
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  );
}

/** The console's public routes (before its session door). */
export function registerConsoleLogin(pages: Hono<AppEnv>): void {
  pages.get("/login", (c) =>
    c.html(
      <Page title="Sign in" face="Console" nav={[]}>
        <LoginForm />
      </Page>,
    ),
  );

  pages.post("/login", async (c) => {
    if (!c.env.ADMIN_TOKEN) throw new GatewayError("service_unavailable", "The admin API is not configured.");
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token : "";
    if (!(await timingSafeEqual(token, c.env.ADMIN_TOKEN))) {
      return c.html(
        <Page title="Sign in" face="Console" nav={[]}>
          <LoginForm error="That is not the admin token." />
        </Page>,
        401,
      );
    }
    const session = await startSession(c, c.var.db, { kind: "console", tenantId: null, via: "admin_token" });
    c.set("audit", sessionCreated(session));
    return c.redirect("/console", 303);
  });
}

/** Sign-out (behind the session door). */
export function registerConsoleLogout(pages: Hono<AppEnv>): void {
  pages.post("/logout", async (c) => {
    const active = c.var.web;
    if (!active) throw new GatewayError("unauthorized", "Sign in first.");
    await endSession(c, c.var.db, active.session);
    c.set("audit", sessionRevoked(active.session));
    return c.redirect("/console/login", 303);
  });
}
