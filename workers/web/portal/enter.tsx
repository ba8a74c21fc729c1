/**
 * Getting into the portal and out again:
 * - `GET /portal/enter?code=…`: a page with one button. Opening a link spends nothing, so a mail
 *   scanner or chat preview that fetches it cannot burn the code; the button's POST does.
 * - `POST /portal/enter`: spends the code (workers/web/portal-codes.ts) and starts a 24 h session.
 *   An unknown, used or expired code gets one and the same answer.
 * - `GET /portal/signin`: where a visitor without a session lands.
 * - `POST /portal/logout`: revokes the session.
 */
import type { Hono } from "hono";
import { sessionCreated, sessionRevoked } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { Notice, Page } from "../layout";
import { redeemCode } from "../portal-codes";
import { endSession, startSession } from "../session";
import { completeSignup } from "./signup";
import { signupEnabled } from "./signup-service";

const INVALID_LINK =
  "This sign-in link is invalid, already used or expired. Ask your API provider for a new one.";

function EnterForm(props: { code: string }) {
  return (
    <form method="post" action="/portal/enter" class="card narrow">
      <p>You are about to sign in to your API portal. The link works once.</p>
      <input type="hidden" name="code" value={props.code} />
      <button type="submit" class="primary">
        Continue to the portal
      </button>
    </form>
  );
}

/** Registers the portal's public routes (before its session door). */
export function registerPortalEntry(portal: Hono<AppEnv>): void {
  portal.get("/enter", (c) =>
    c.html(
      <Page title="Sign in" face="Portal" nav={[]}>
        <EnterForm code={c.req.query("code") ?? ""} />
      </Page>,
    ),
  );

  portal.post("/enter", async (c) => {
    const form = await c.req.parseBody();
    const code = typeof form.code === "string" ? form.code : "";
    const row = await redeemCode(c.var.db, code);
    if (row?.purpose === "signup") return await completeSignup(c, row);
    if (!row?.tenantId) {
      return c.html(
        <Page title="Sign in" face="Portal" nav={[]}>
          <Notice kind="error">{INVALID_LINK}</Notice>
        </Page>,
        400,
      );
    }
    const session = await startSession(c, c.var.db, {
      kind: "portal",
      tenantId: row.tenantId,
      via: row.purpose,
      email: row.email,
    });
    c.set("audit", sessionCreated(session));
    return c.redirect("/portal", 303);
  });

  portal.get("/signin", (c) =>
    c.html(
      <Page title="Sign in" face="Portal" nav={[]}>
        <div class="card narrow">
          <p>To sign in, open the portal link your API provider gave you.</p>
          {signupEnabled(c) && (
            <p>
              <a href="/portal/signup">Sign up, or get a sign-in link by email</a>
            </p>
          )}
        </div>
      </Page>,
    ),
  );
}

/** Registers logout (behind the session door: it needs the session and its CSRF value). */
export function registerPortalLogout(portal: Hono<AppEnv>): void {
  portal.post("/logout", async (c) => {
    const active = c.var.web;
    if (!active) throw new GatewayError("unauthorized", "Sign in first.");
    await endSession(c, c.var.db, active.session);
    c.set("audit", sessionRevoked(active.session));
    return c.html(
      <Page title="Signed out" face="Portal" nav={[]}>
        <Notice kind="ok">You are signed out. Your provider's link signs you in again.</Notice>
      </Page>,
    );
  });
}
