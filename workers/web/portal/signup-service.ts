/**
 * Self-serve sign-up and email sign-in, the parts without a page (workers/web/portal/signup.tsx
 * renders them): the address as it is compared and stored, the plan sign-ups start on, the magic
 * link's code and its throttle, the mail itself, and turning a redeemed sign-up code into a tenant.
 *
 * Throttle, so the form cannot be used to flood an inbox or the mail API's quota:
 * - per address: at most one link a minute, counted in `portal_codes` (Postgres, exact: a
 *   transaction-scoped advisory lock on the address serialises two concurrent requests);
 * - per client IP: at most `MAILS_PER_IP_PER_HOUR` links an hour, counted in KV. `portal_codes` has no
 *   column for the IP and this change adds no migration; KV is eventually consistent across
 *   locations, so this one is a soft ceiling (a burst spread over several locations may pass a few
 *   more), while the per-address one is exact.
 * Over either, nothing is sent and the visitor sees the same "check your inbox" page as everyone.
 */
import { and, count, eq, gt, inArray, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import { html } from "hono/html";
import { sha256Hex } from "../../../durable-objects/sha256";
import { type Plan, type PortalCode, plans, portalCodes, tenants } from "../../../schema";
import { type CreatedTenant, createTenant } from "../../api/tenant-create";
import type { AppEnv } from "../../env";
import { clientIp } from "../../shared/client-ip";
import type { Db } from "../../shared/db";
import { type MailResult, sendMail } from "../../shared/mail";
import { CODE_TTL_MS, mintCode } from "../portal-codes";

/** One link per address per minute. */
export const MAIL_INTERVAL_MS = 60_000;
/** Links per client IP per hour (fixed UTC hour windows). */
export const MAILS_PER_IP_PER_HOUR = 10;

/**
 * The address as compared and stored: trimmed, lower case, the shape browsers accept for
 * `<input type=email>` plus a dot in the domain; at most 254 characters (64 before the @). Null when
 * it is not an address.
 */
export function normalizeEmail(raw: unknown): string | null {
  if (typeof raw !== "string") return null;
  const email = raw.trim().toLowerCase();
  if (email.length > 254) return null;
  const at = email.indexOf("@");
  if (at < 1 || at > 64) return null;
  const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
  const shape = new RegExp(`^[a-z0-9.!#$%&'*+/=?^_\`{|}~-]+@${label}(?:\\.${label})+$`);
  return shape.test(email) ? email : null;
}

/** True when the operator turned sign-up on (`PORTAL_SIGNUP_PLAN`). */
export const signupEnabled = (c: Context<AppEnv>): boolean => c.var.config.portalSignupPlan !== null;

/** The plan sign-ups start on when sign-up can take someone now; else why not (shown on the page). */
export async function signupReadiness(c: Context<AppEnv>): Promise<{ plan: Plan } | { unavailable: string }> {
  if (!c.var.config.mail)
    return { unavailable: "Sign-up by email is not available right now: this gateway sends no mail yet." };
  const plan = await signupPlan(c);
  if (!plan) return { unavailable: "Sign-up is not available right now: its plan is not set up yet." };
  return { plan };
}

/** The plan sign-ups start on: `PORTAL_SIGNUP_PLAN` as a plan id, else as a plan name. */
export async function signupPlan(c: Context<AppEnv>): Promise<Plan | null> {
  const wanted = c.var.config.portalSignupPlan;
  if (wanted === null) return null;
  const found = await c.var.db
    .select()
    .from(plans)
    .where(or(eq(plans.id, wanted), eq(plans.name, wanted)));
  return found.find((p) => p.id === wanted) ?? found[0] ?? null;
}

/** A magic link minted for `email`: the code to mail, and what it does when redeemed. */
export interface MagicLink {
  code: string;
  codeId: string;
  purpose: "signup" | "signin";
}

/**
 * Mints the link for `email` — `signin` when a tenant has that address, else `signup` — or null when
 * the throttle says no (then nothing is to be sent).
 */
export async function mintMagicLink(
  c: Context<AppEnv>,
  email: string,
  now = Date.now(),
): Promise<MagicLink | null> {
  if (!(await ipAllows(c, now))) return null;
  const db = c.var.db;
  return await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`portal-mail:${email}`}))`);
    const [recent] = await tx
      .select({ n: count() })
      .from(portalCodes)
      .where(
        and(
          eq(portalCodes.email, email),
          inArray(portalCodes.purpose, ["signup", "signin"]),
          gt(portalCodes.createdAt, new Date(now - MAIL_INTERVAL_MS)),
        ),
      );
    if ((recent?.n ?? 0) > 0) return null;
    const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.email, email));
    const purpose = tenant ? "signin" : "signup";
    const minted = await mintCode(tx, { purpose, tenantId: tenant?.id ?? null, email }, now);
    return { code: minted.code, codeId: minted.id, purpose };
  });
}

/** Counts one link against the client's IP for this hour; false when it is over the limit. */
async function ipAllows(c: Context<AppEnv>, now: number): Promise<boolean> {
  const hour = Math.floor(now / 3_600_000);
  const key = `signup-ip:${await sha256Hex(clientIp(c) ?? "unknown")}:${hour}`;
  const sent = Number((await c.env.API_KEYS.get(key)) ?? 0);
  if (sent >= MAILS_PER_IP_PER_HOUR) return false;
  try {
    // Kept a little past its hour (KV wants at least 60 s); the hour is in the key.
    await c.env.API_KEYS.put(key, String(sent + 1), { expirationTtl: 3_700 });
  } catch {
    // KV refuses more than one write a second to a key: that client is sending fast enough to stop.
    return false;
  }
  return true;
}

/** Mails the link; a failed send withdraws the code, so the address is not held by the throttle. */
export async function mailMagicLink(
  c: Context<AppEnv>,
  email: string,
  link: MagicLink,
  plan: Plan,
): Promise<MailResult> {
  const url = new URL("/portal/enter", c.req.url);
  url.searchParams.set("code", link.code);
  const sent = await sendMail(c.env, {
    to: email,
    ...(await magicLinkMail(url.toString(), link.purpose, plan)),
  });
  if (!sent.ok) await c.var.db.delete(portalCodes).where(eq(portalCodes.id, link.codeId));
  return sent;
}

/** The mail's subject and bodies. The link is a credential: it appears in the mail and nowhere else. */
async function magicLinkMail(
  link: string,
  purpose: MagicLink["purpose"],
  plan: Plan,
): Promise<{ subject: string; text: string; html: string }> {
  const minutes = CODE_TTL_MS / 60_000;
  const signup = purpose === "signup";
  const subject = signup ? "Finish signing up for the API portal" : "Your sign-in link for the API portal";
  const lead = signup
    ? `Open this link to create your account (plan: ${plan.name}) and get a test key for the sandbox:`
    : "Open this link to sign in to your API portal:";
  const text = `${lead}\n\n${link}\n\nIt works once, within ${minutes} minutes. If you did not ask for it, ignore this mail.\n`;
  const body = await html`<p>${lead}</p>
<p><a href="${link}">${signup ? "Create my account" : "Sign in"}</a></p>
<p>Or paste this address into your browser: ${link}</p>
<p>It works once, within ${minutes} minutes. If you did not ask for it, ignore this mail.</p>`;
  return { subject, text, html: body.toString() };
}

/** The tenant a redeemed sign-up code leads to: made now, or the one that already has the address. */
export type SignupOutcome = { made: CreatedTenant } | { existing: string };

/**
 * Makes the tenant of a redeemed sign-up code: slug from the address's local part (made unique),
 * name = the address, `tenants.email` = the address, on `plan`, with one test key. When a tenant
 * already has the address (a second sign-up link of the same address, possibly redeemed at the same
 * moment: the unique email decides) that tenant is returned instead.
 */
export async function completeSignupTenant(
  c: Context<AppEnv>,
  code: PortalCode & { email: string },
  plan: Plan,
): Promise<SignupOutcome> {
  const db = c.var.db;
  const email = code.email;
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await tenantByEmail(db, email);
    if (existing) return { existing };
    const made = await createTenant(
      c.env,
      db,
      plan,
      { slug: slugFor(email, attempt), name: email, email },
      { env: "test", name: "sandbox", role: "admin" },
    );
    if (made) return { made };
  }
  const existing = await tenantByEmail(db, email);
  if (existing) return { existing };
  throw new Error("no free slug for a sign-up after 5 attempts");
}

async function tenantByEmail(db: Db, email: string): Promise<string | null> {
  const [row] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.email, email));
  return row?.id ?? null;
}

/**
 * A slug from the address's local part (`Jane.Doe+api@x.io` → `jane-doe-api`); from the second attempt
 * on, with a random suffix. Always within the admin API's slug rule.
 */
function slugFor(email: string, attempt: number): string {
  const local = email.slice(0, email.indexOf("@"));
  const base =
    local
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 30)
      .replace(/-+$/, "") || "dev";
  if (attempt === 0) return base;
  const suffix = [...crypto.getRandomValues(new Uint8Array(3))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `${base}-${suffix}`;
}
