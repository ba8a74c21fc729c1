/**
 * Self-serve sign-up and email sign-in (workers/web/portal/signup.tsx) through the Worker's real
 * entry, with mail over real HTTP: to the dev mailbox (dev/mailbox.ts, the test stack's
 * MAIL_API_URL), or to the recording test origin to see the request's exact shape.
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { apiKeys, portalCodes, tenants, webSessions } from "../../schema";
import worker from "../../workers/index";
import { sendMail } from "../../workers/shared/mail";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, BASE, createPlan, expectJson, gateway, uniq } from "../support/gateway";
import { WebClient } from "../support/web";

const clock = controlledClock();
const MAILBOX = inject("mailboxUrl");
const CHECK_INBOX = "Check your inbox";
let planId = "";

interface Message {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

beforeAll(async () => {
  // PORTAL_SIGNUP_PLAN is "signup-default" in the test stack (vitest.config.ts).
  // The database is shared by every file: page through all plans (another file may have made it).
  let cursor: string | null = null;
  do {
    const page: { data: Array<{ id: string; name: string }>; next_cursor: string | null } = await expectJson(
      await admin("GET", `/admin/v1/plans?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
      200,
    );
    planId = page.data.find((p) => p.name === "signup-default")?.id ?? planId;
    cursor = page.next_cursor;
  } while (!planId && cursor);
  if (!planId) planId = (await createPlan({ name: "signup-default" })).id;
});

/** A fresh client IP per browser: its own hour's budget (the run's third octet keeps runs apart). */
const RUN_OCTET = Math.floor(Math.random() * 256);
let ips = 0;
const nextIp = () => `198.51.${RUN_OCTET}.${++ips}`;

/** A browser at its own client IP (the per-IP throttle counts per CF-Connecting-IP). */
function browser(overrides: Partial<typeof env> = {}, ip = nextIp()) {
  const testEnv = { ...env, ...overrides } as typeof env;
  for (const [k, v] of Object.entries(overrides))
    if (v === undefined) delete (testEnv as unknown as Record<string, unknown>)[k];
  const fetcher = async (path: string, init: RequestInit) => {
    const headers = new Headers(init.headers);
    headers.set("cf-connecting-ip", ip);
    if (Object.keys(overrides).length === 0)
      return exports.default.fetch(new Request(`${BASE}${path}`, { redirect: "manual", ...init, headers }));
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}${path}`, { redirect: "manual", ...init, headers }),
      testEnv,
      ctx,
    );
    // Read the body before waiting: the request's log line (a waitUntil) waits for the body to be sent.
    const body = await res.arrayBuffer();
    await waitOnExecutionContext(ctx);
    return new Response(body, res);
  };
  return new WebClient(fetcher);
}

const address = (local = `dev-${uniq()}`) => `${local}@example.com`;

async function inbox(to: string): Promise<Message[]> {
  const res = await fetch(`${MAILBOX}/messages?to=${encodeURIComponent(to)}`);
  return (await res.json()) as Message[];
}

/** The code of the one link in a message. */
function codeOf(message: Message | undefined): string {
  const link = /https:\/\/gateway\.test\/portal\/enter\?code=([A-Za-z0-9_-]{43})/.exec(message?.text ?? "");
  if (!link?.[1]) throw new Error(`no portal link in ${JSON.stringify(message)}`);
  expect(message?.html).toContain(`href="https://gateway.test/portal/enter?code=${link[1]}"`);
  return link[1];
}

/** The visible answer of a POST, with the address taken out (what must not depend on the address). */
const shapeOf = async (res: Response, email: string) =>
  `${res.status} ${(await res.text()).replaceAll(email, "EMAIL").replace(/req_[a-z0-9]+/g, "")}`;

const tenantOf = (email: string) =>
  withDb(async (db) => (await db.select().from(tenants).where(eq(tenants.email, email)))[0]);

describe("sign-up by email", () => {
  it("email → magic link → a tenant on the sign-up plan with one test key, shown once, that calls the sandbox", async () => {
    const web = browser();
    const form = await web.page("/portal/signup");
    expect(form).toContain('id="signup-form"');
    expect(form).toContain("signup-default");

    const email = address(`Jane.Doe+api-${uniq()}`).toLowerCase();
    const typed = `  ${email.toUpperCase()} `;
    const res = await web.post("/portal/signup", { email: typed });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(CHECK_INBOX);

    const [mail, ...more] = await inbox(email);
    expect(more).toEqual([]);
    expect(mail?.from).toBe("Gateway Portal <portal@gateway.test>");
    expect(mail?.to).toEqual([email]);
    expect(mail?.subject).toBe("Finish signing up for the API portal");
    const code = codeOf(mail);
    expect(await tenantOf(email)).toBeUndefined(); // nothing is made until the link is used

    // Opening the link (a mail scanner does too) spends nothing; the button does.
    expect(await web.page(`/portal/enter?code=${code}`)).toContain(`value="${code}"`);
    const welcome = await web.post("/portal/enter", { code });
    const page = await welcome.text();
    expect(welcome.status, page).toBe(200);
    const key = /<code id="new-key">(gw_test_[A-Za-z0-9_]+)<\/code>/.exec(page)?.[1] ?? "";
    expect(key).toMatch(/^gw_test_/);
    expect(page).toContain('data-copy="new-key"');
    expect(page).toContain(`curl https://gateway.test/v1/hello -H &quot;Authorization: Bearer ${key}&quot;`);

    const tenant = await tenantOf(email);
    expect(tenant).toMatchObject({ name: email, email, planId, status: "active" });
    expect(tenant?.slug).toBe(email.slice(0, email.indexOf("@")).replace(/[^a-z0-9]+/g, "-"));
    // Made by the admin API's own service: the Stripe customer exists like any tenant's.
    expect(tenant?.stripeCustomerId).toMatch(/^cus_/);
    const keys = await withDb((db) =>
      db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.tenantId, tenant?.id ?? "")),
    );
    expect(keys.map((k) => [k.env, k.role])).toEqual([["test", "admin"]]);
    const sessions = await withDb((db) =>
      db
        .select()
        .from(webSessions)
        .where(eq(webSessions.tenantId, tenant?.id ?? "")),
    );
    expect(sessions.map((s) => [s.via, s.email])).toEqual([["signup", email]]);

    // Signed in: the portal is theirs.
    expect(await web.page("/portal")).toContain(email);

    // The key works against the sandbox, and only there.
    const marker = uniq();
    const call = await gateway(`/v1/hello?m=${marker}`, { headers: { authorization: `Bearer ${key}` } });
    expect(call.status).toBe(200);
    const origin = (await (
      await fetch(`${inject("originUrl")}/__calls?contains=${marker}`)
    ).json()) as Array<{
      path: string;
    }>;
    expect(origin.map((c) => c.path)).toEqual([`/sandbox/v1/hello?m=${marker}`]);
    // The door: a test key never makes a live key.
    const live = await gateway("/gateway/v1/keys", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ env: "live", name: "prod" }),
    });
    expect((await expectJson(live, 403)).code).toBe("forbidden");
    // The key is shown once: nowhere in the portal afterwards.
    expect(await web.page("/portal")).not.toContain(key);
  });

  it("answers the same page for a new, an existing and a throttled address; mails signup, signin, nothing", async () => {
    const web = browser();
    const fresh = address();
    const existing = address();
    // An account with `existing`: sign it up first.
    await web.post("/portal/signup", { email: existing });
    expect((await web.post("/portal/enter", { code: codeOf((await inbox(existing))[0]) })).status).toBe(200);
    const owner = await tenantOf(existing);
    clock.set(Date.now() + 61_000); // past the address's minute

    const answers = [
      await shapeOf(await browser().post("/portal/signup", { email: fresh }), fresh),
      await shapeOf(await browser().post("/portal/signup", { email: existing }), existing),
      // The same address again within the minute: throttled, nothing sent, same page.
      await shapeOf(await browser().post("/portal/signup", { email: fresh }), fresh),
    ];
    expect(answers[0]).toContain(CHECK_INBOX);
    expect(new Set(answers).size).toBe(1);

    const freshMail = await inbox(fresh);
    expect(freshMail.map((m) => m.subject)).toEqual(["Finish signing up for the API portal"]);
    const existingMail = await inbox(existing);
    expect(existingMail.map((m) => m.subject)).toEqual([
      "Finish signing up for the API portal",
      "Your sign-in link for the API portal",
    ]);

    // The sign-in link signs in to the existing tenant; no second tenant, no new key.
    const signin = browser();
    const res = await signin.post("/portal/enter", { code: codeOf(existingMail[1]) });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/portal");
    expect(await signin.page("/portal")).toContain(existing);
    const rows = await withDb((db) => db.select().from(tenants).where(eq(tenants.email, existing)));
    expect(rows.map((t) => t.id)).toEqual([owner?.id]);
    const sessions = await withDb((db) =>
      db
        .select()
        .from(webSessions)
        .where(eq(webSessions.tenantId, owner?.id ?? "")),
    );
    expect(sessions.map((s) => s.via).sort()).toEqual(["signin", "signup"]);

    // A minute later the address may have another link.
    clock.set(Date.now() + 60_001);
    await browser().post("/portal/signup", { email: fresh });
    expect(await inbox(fresh)).toHaveLength(2);
  });

  it(`sends at most 10 links an hour to one client IP, answering the same page past it`, async () => {
    const ip = nextIp();
    clock.set(`2031-0${Math.floor(Math.random() * 9) + 1}-15T10:00:00.000Z`); // an hour no other test used
    const emails = Array.from({ length: 11 }, () => address());
    const answers: string[] = [];
    for (const email of emails)
      answers.push(await shapeOf(await browser({}, ip).post("/portal/signup", { email }), email));
    expect(new Set(answers).size).toBe(1);
    const counts = await Promise.all(emails.map(async (e) => (await inbox(e)).length));
    expect(counts).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // Another IP is not held up, and the next hour the first may send again.
    const other = address();
    await browser().post("/portal/signup", { email: other });
    expect(await inbox(other)).toHaveLength(1);
    clock.advance(3_600_000);
    const later = address();
    await browser({}, ip).post("/portal/signup", { email: later });
    expect(await inbox(later)).toHaveLength(1);
  });

  it("refuses a malformed address with the form again (400), escaped; escapes an odd but valid one", async () => {
    const web = browser();
    const hostile = `"><script>alert(1)</script>@x.io`;
    const res = await web.post("/portal/signup", { email: hostile });
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(html).toContain("Enter an email address");
    expect(html).toContain("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@x.io");
    expect(html).not.toContain("<script>alert(1)");

    const odd = `o'hara&co-${uniq()}@example.com`;
    const ok = await web.post("/portal/signup", { email: odd });
    const page = await ok.text();
    expect(ok.status).toBe(200);
    expect(page).toContain(odd.replace("&", "&amp;").replace("'", "&#39;"));
    expect(page).not.toContain(odd);

    // A script gets problem+json for the same mistake.
    const script = await browser().send("/portal/signup", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: BASE,
        accept: "application/json",
      },
      body: "email=nope",
    });
    expect(await expectJson(script, 400)).toMatchObject({ code: "validation_failed" });
  });
});

describe("magic links", () => {
  it("work once; two sign-up links for one address make one tenant, the second signs in", async () => {
    const email = address();
    await browser().post("/portal/signup", { email });
    clock.set(Date.now() + 61_000);
    await browser().post("/portal/signup", { email });
    const [first, second] = (await inbox(email)).map(codeOf);

    const a = browser();
    expect((await a.post("/portal/enter", { code: first ?? "" })).status).toBe(200);
    const again = await browser().post("/portal/enter", { code: first ?? "" });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("invalid, already used or expired");

    const b = browser();
    const res = await b.post("/portal/enter", { code: second ?? "" });
    expect(res.status).toBe(303);
    expect(await b.page("/portal")).toContain(email);
    const rows = await withDb((db) => db.select().from(tenants).where(eq(tenants.email, email)));
    expect(rows).toHaveLength(1);
    const keys = await withDb((db) =>
      db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.tenantId, rows[0]?.id ?? "")),
    );
    expect(keys).toHaveLength(1);
  });

  it("make one tenant when two sign-up links of one address are redeemed at once", async () => {
    const local = `race-${uniq()}`;
    const email = address(local);
    // The local part's slug is taken, so the two redeems try different random slugs: the unique
    // email alone must decide.
    const other = await createPlan();
    await expectJson(
      await admin("POST", "/admin/v1/tenants", { slug: local, name: "taken", planId: other.id }),
      201,
    );
    await browser().post("/portal/signup", { email });
    clock.set(Date.now() + 61_000);
    await browser().post("/portal/signup", { email });
    const codes = (await inbox(email)).map(codeOf);
    const results = await Promise.all(codes.map((code) => browser().post("/portal/enter", { code })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 303]);
    const rows = await withDb((db) => db.select().from(tenants).where(eq(tenants.email, email)));
    expect(rows).toHaveLength(1);
  });

  it("give a new address's tenant a unique slug when its local part is taken", async () => {
    const local = `taken-${uniq()}`;
    for (const domain of ["example.com", "example.org"]) {
      const email = `${local}@${domain}`;
      await browser().post("/portal/signup", { email });
      expect((await browser().post("/portal/enter", { code: codeOf((await inbox(email))[0]) })).status).toBe(
        200,
      );
    }
    const [a, b] = await Promise.all([tenantOf(`${local}@example.com`), tenantOf(`${local}@example.org`)]);
    expect(a?.slug).toBe(local);
    expect(b?.slug).toMatch(new RegExp(`^${local}-[0-9a-f]{6}$`));
  });
});

describe("when sign-up cannot run", () => {
  it("is a 404 page when the operator has not turned it on, and sign-in does not link to it", async () => {
    const off = browser({ PORTAL_SIGNUP_PLAN: undefined });
    const page = await off.get("/portal/signup");
    expect(page.status).toBe(404);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const email = address();
    expect((await off.post("/portal/signup", { email })).status).toBe(404);
    expect(await inbox(email)).toEqual([]);
    expect(await off.page("/portal/signin")).not.toContain("/portal/signup");
    expect(await browser().page("/portal/signin")).toContain('href="/portal/signup"');
  });

  it("says sign-up is unavailable (503, never a 500) without a mail API key, and sends nothing", async () => {
    const nomail = browser({ MAIL_API_KEY: undefined });
    const page = await nomail.get("/portal/signup");
    expect(page.status).toBe(503);
    expect(await page.text()).toContain("Sign-up by email is not available right now");
    const email = address();
    expect((await nomail.post("/portal/signup", { email })).status).toBe(503);
    const codes = await withDb((db) => db.select().from(portalCodes).where(eq(portalCodes.email, email)));
    expect(codes).toEqual([]);
  });

  it("shows 'try again' when the mail API refuses or is down, keeps no code, and lets the retry send", async () => {
    const email = address();
    for (const overrides of [{ MAIL_API_KEY: "re_wrong" }, { MAIL_API_URL: inject("deadOriginUrl") }]) {
      const res = await browser(overrides).post("/portal/signup", { email });
      expect(res.status).toBe(503);
      const html = await res.text();
      expect(html).toContain("couldn&#39;t send the email");
      expect(html).toContain('id="signup-form"');
    }
    const script = await browser({ MAIL_API_KEY: "re_wrong" }).send("/portal/signup", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: BASE,
        accept: "application/json",
      },
      body: new URLSearchParams({ email }).toString(),
    });
    expect(await expectJson(script, 503)).toMatchObject({ code: "service_unavailable" });
    expect(script.headers.get("retry-after")).toBe("60");
    const codes = await withDb((db) => db.select().from(portalCodes).where(eq(portalCodes.email, email)));
    expect(codes).toEqual([]);
    // Not held by the address's minute: the failed sends left nothing behind.
    await browser().post("/portal/signup", { email });
    expect(await inbox(email)).toHaveLength(1);
  });
});

describe("the mail API request", () => {
  it("is Resend's shape: POST {MAIL_API_URL}/emails, Bearer key, JSON {from, to, subject, text, html}", async () => {
    const base = `${inject("originUrl")}/mail-${uniq()}`;
    const email = address();
    const res = await browser({ MAIL_API_URL: base }).post("/portal/signup", { email });
    expect(res.status).toBe(200);
    const calls = (await (
      await fetch(`${inject("originUrl")}/__calls?contains=${new URL(base).pathname}`)
    ).json()) as Array<{
      method: string;
      path: string;
      headers: Record<string, string>;
      body: string;
    }>;
    expect(calls.map((c) => [c.method, c.path])).toEqual([["POST", `${new URL(base).pathname}/emails`]]);
    expect(calls[0]?.headers.authorization).toBe("Bearer re_test_mailbox");
    expect(calls[0]?.headers["content-type"]).toBe("application/json");
    const body = JSON.parse(calls[0]?.body ?? "{}") as Message;
    expect(Object.keys(body).sort()).toEqual(["from", "html", "subject", "text", "to"]);
    expect(body).toMatchObject({
      from: "Gateway Portal <portal@gateway.test>",
      to: [email],
      subject: "Finish signing up for the API portal",
    });
    codeOf(body);
  });

  it("gives up after the timeout, as a value", async () => {
    const started = Date.now();
    const result = await sendMail(
      { ...env, MAIL_API_URL: `${inject("originUrl")}/slow` } as typeof env,
      { to: address(), subject: "s", text: "t", html: "<p>t</p>" },
      300,
    );
    expect(result).toEqual({ ok: false, reason: "timeout" });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("the dev mailbox", () => {
  const post = (body: unknown, auth = "Bearer re_test_mailbox") =>
    fetch(`${MAILBOX}/emails`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const good = { from: "A <a@example.com>", to: "b@example.com", subject: "Hi", text: "Hello" };

  it("checks the key and the shape as the real API does, and lists what it accepted", async () => {
    expect(await (await post(good, "")).json()).toMatchObject({ statusCode: 401, name: "missing_api_key" });
    expect(await (await post(good, "Bearer nope")).json()).toMatchObject({
      statusCode: 403,
      name: "invalid_api_key",
    });
    for (const bad of [
      "not json",
      [],
      { ...good, from: "nobody" },
      { ...good, to: [] },
      { ...good, to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) },
      { ...good, subject: " " },
      { from: good.from, to: good.to, subject: "Hi" },
    ]) {
      const res = await post(bad);
      expect(res.status, JSON.stringify(bad)).toBe(422);
      expect(await res.json()).toMatchObject({ statusCode: 422, name: "validation_error" });
    }
    const to = address();
    const ok = await post({ ...good, to });
    expect(await expectJson(ok, 200)).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(await inbox(to)).toEqual([
      expect.objectContaining({ from: good.from, to: [to], subject: "Hi", text: "Hello", html: null }),
    ]);
  });
});
