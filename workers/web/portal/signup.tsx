/**
 * Self-serve sign-up and sign-in by email, when the operator turns it on (`PORTAL_SIGNUP_PLAN`):
 * - `GET /portal/signup`: one form for both — an address.
 * - `POST /portal/signup`: mails a `signup` link (no tenant has the address) or a `signin` link (one
 *   has), throttled (workers/web/portal/signup-service.ts), and always answers the same "check your
 *   inbox" page, so the form tells nobody whether an address has an account. A malformed address is
 *   the only other answer (400, the form again): it depends on the text typed, not on any account.
 * - `completeSignup`: what `POST /portal/enter` does with a redeemed `signup` code — the tenant on the
 *   sign-up plan with one test key, a session, and a welcome page that shows the key once.
 * Sign-up off → 404. Mail not configured, or the plan missing → the page says sign-up is unavailable
 * (503). A send that fails or times out → the form again with "try again" (503; problem+json for scripts).
 */
import type { Context, Hono } from "hono";
import type { Plan, PortalCode } from "../../../schema";
import { sessionCreated, tenantCreated } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { wantsErrorPage } from "../error-page";
import { Notice, Page } from "../layout";
import { CODE_TTL_MS } from "../portal-codes";
import { startSession } from "../session";
import {
  completeSignupTenant,
  mailMagicLink,
  mintMagicLink,
  normalizeEmail,
  signupEnabled,
  signupPlan,
  signupReadiness,
} from "./signup-service";

const UNAVAILABLE_TITLE = "Sign-up unavailable";
const SEND_FAILED = "We couldn't send the email just now. Please try again in a minute.";

function SignupForm(props: { plan: Plan; email?: string }) {
  return (
    <form method="post" action="/portal/signup" class="card narrow" id="signup-form">
      <p>
        New here? We'll email you a link that creates your account on the <strong>{props.plan.name}</strong>{" "}
        plan, with a test key for the sandbox. Already have an account? The same form emails you a sign-in
        link.
      </p>
      <label for="email">Email address</label>
      <input
        id="email"
        name="email"
        type="email"
        autocomplete="email"
        required
        maxlength={254}
        value={props.email ?? ""}
      />
      <button type="submit" class="primary">
        Email me a link
      </button>
    </form>
  );
}

/** The page a browser gets; a script gets `error` as problem+json. */
function pageOrProblem(c: Context<AppEnv>, error: GatewayError, page: () => Response | Promise<Response>) {
  if (!wantsErrorPage(c)) throw error;
  c.set("problemCode", error.code); // the request's log line names what went wrong
  return page();
}

/** Registers `/portal/signup` (public: before the session door). */
export function registerPortalSignup(portal: Hono<AppEnv>): void {
  portal.on(["GET", "POST"], "/signup", async (c) => {
    if (!signupEnabled(c)) throw new GatewayError("not_found", "Sign-up is not offered here.");
    const ready = await signupReadiness(c);
    if ("unavailable" in ready) {
      const reason = ready.unavailable;
      return pageOrProblem(c, new GatewayError("service_unavailable", reason), () =>
        c.html(
          <Page title={UNAVAILABLE_TITLE} face="Portal" nav={[]}>
            <Notice kind="error">{reason}</Notice>
          </Page>,
          503,
        ),
      );
    }
    const plan = ready.plan;
    const form = (title: string, status: 200 | 400 | 503, notice?: string, email?: string) =>
      c.html(
        <Page title={title} face="Portal" nav={[]}>
          {notice && <Notice kind="error">{notice}</Notice>}
          <SignupForm plan={plan} email={email} />
        </Page>,
        status,
      );
    if (c.req.method === "GET") return form("Sign up or sign in", 200);

    const body = await c.req.parseBody();
    const typed = typeof body.email === "string" ? body.email.slice(0, 320) : "";
    const email = normalizeEmail(typed);
    if (!email) {
      const detail = "Enter an email address, like dev@example.com.";
      const error = new GatewayError("validation_failed", detail, {
        errors: [{ path: "email", message: "not an email address" }],
      });
      return pageOrProblem(c, error, () => form("Sign up or sign in", 400, detail, typed));
    }
    const link = await mintMagicLink(c, email);
    if (link) {
      const sent = await mailMagicLink(c, email, link, plan);
      if (!sent.ok) {
        const error = new GatewayError("service_unavailable", SEND_FAILED, {
          headers: { "retry-after": "60" },
        });
        return pageOrProblem(c, error, () => form("Sign up or sign in", 503, SEND_FAILED, email));
      }
    }
    return c.html(
      <Page title="Check your inbox" face="Portal" nav={[]}>
        <div class="card narrow" id="check-inbox">
          <p>
            If <strong>{email}</strong> can sign up or sign in here, a link is on its way to it. It works
            once, within {CODE_TTL_MS / 60_000} minutes.
          </p>
          <p class="muted">
            Nothing after a few minutes? Check your spam folder, or <a href="/portal/signup">ask again</a>.
          </p>
        </div>
      </Page>,
      200,
    );
  });
}

/**
 * A redeemed `signup` code: makes the tenant (or, when the address already has one, signs in to
 * it), starts the session and shows the test key once with a curl for the sandbox.
 */
export async function completeSignup(c: Context<AppEnv>, code: PortalCode): Promise<Response> {
  const plan = signupEnabled(c) ? await signupPlan(c) : null;
  const email = code.email;
  if (!plan || !email) {
    c.set("problemCode", "service_unavailable");
    return c.html(
      <Page title={UNAVAILABLE_TITLE} face="Portal" nav={[]}>
        <Notice kind="error">
          Sign-up is not available right now. Your link is used up; ask for a new one later.
        </Notice>
      </Page>,
      503,
    );
  }
  const outcome = await completeSignupTenant(c, { ...code, email }, plan);
  if ("existing" in outcome) {
    const session = await startSession(c, c.var.db, {
      kind: "portal",
      tenantId: outcome.existing,
      via: "signin",
      email,
    });
    c.set("audit", sessionCreated(session));
    return c.redirect("/portal", 303);
  }
  const { tenant, key } = outcome.made;
  const session = await startSession(c, c.var.db, {
    kind: "portal",
    tenantId: tenant.id,
    via: "signup",
    email,
  });
  // The sign-up's own session is who made the tenant.
  const signedUp = sessionCreated(session);
  c.set("audit", [{ ...tenantCreated(outcome.made), actor: signedUp.actor }, signedUp]);
  const curl = `curl ${new URL(c.req.url).origin}${sandboxPath(c, plan)} -H "Authorization: Bearer ${key.plaintext}"`;
  return c.html(
    <Page title="Welcome" face="Portal" nav={[]}>
      <Notice kind="ok">
        Your account is ready: {email}, on the {plan.name} plan.
      </Notice>
      <div class="card">
        <h2>Your test key</h2>
        <p>
          Shown once: copy it now. It calls the sandbox only, is never billed, and can make more test keys.
          The portal shows only its last four characters from now on.
        </p>
        <div class="secret">
          <code id="new-key">{key.plaintext}</code>
          <button type="button" data-copy="new-key">
            Copy
          </button>
        </div>
        <h2>Call the sandbox</h2>
        <div class="secret">
          <code id="sandbox-curl">{curl}</code>
          <button type="button" data-copy="sandbox-curl">
            Copy
          </button>
        </div>
        <p>
          <a class="button primary" href="/portal">
            Continue to the portal
          </a>
        </p>
      </div>
    </Page>,
    200,
  );
}

/** A path the plan may call: the shortest route prefix it is entitled to, plus `hello`. */
function sandboxPath(c: Context<AppEnv>, plan: Plan): string {
  const open = c.var.config.routes.filter((r) => !r.entitlement || plan.entitlements.includes(r.entitlement));
  const shortest = open.reduce<string | null>(
    (best, r) => (best && best.length <= r.prefix.length ? best : r.prefix),
    null,
  );
  return `${shortest ?? "/"}hello`;
}
