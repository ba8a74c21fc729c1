/**
 * Getting into the web faces: operator-minted one-time portal links, the portal and console session
 * cookies, CSRF on every state-changing request, logout that revokes, the security headers, and a
 * portal session that never sees another tenant.
 */
import { exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { tenants, webSessions } from "../../schema";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, expectJson, seedTenant } from "../support/gateway";
import { consoleSession, csrfOf, portalLink, portalSession, WebClient } from "../support/web";

const clock = controlledClock();
const INVALID = "This sign-in link is invalid, already used or expired.";

describe("operator-minted portal links", () => {
  it("answer { url, expiresAt } 15 minutes out, only to the admin token, only for a tenant that exists", async () => {
    const { tenantId } = await seedTenant();
    clock.set("2027-03-01T10:00:00.000Z");
    const link = await portalLink(tenantId);
    expect(link.expiresAt).toBe("2027-03-01T10:15:00.000Z");
    expect(new URL(link.url).pathname).toBe("/portal/enter");
    expect(link.code).toMatch(/^[A-Za-z0-9_-]{43}$/);

    expect(
      (await admin("POST", `/admin/v1/tenants/${tenantId}/portal-sessions`, undefined, "wrong")).status,
    ).toBe(401);
    const missing = await admin("POST", "/admin/v1/tenants/ten_nope/portal-sessions");
    expect((await expectJson(missing, 404)).code).toBe("not_found");
  });

  it("open a page that spends nothing; its button signs in once; a used, expired or unknown code gets one answer", async () => {
    const { tenantId } = await seedTenant();
    clock.set("2027-03-02T10:00:00.000Z");
    const link = await portalLink(tenantId);
    const web = new WebClient();

    // Opening the link (a mail scanner does too) only shows the button.
    const landing = await web.get(`/portal/enter?code=${link.code}`);
    expect(landing.status).toBe(200);
    expect(await landing.text()).toContain(`value="${link.code}"`);

    const enter = await web.post("/portal/enter", { code: link.code });
    expect(enter.status).toBe(303);
    expect(enter.headers.get("location")).toBe("/portal");
    const cookie = enter.headers.getAll("set-cookie").join("\n");
    expect(cookie).toMatch(/gw_portal=[A-Za-z0-9_-]{43}/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Secure/); // https://gateway.test is not localhost
    expect(cookie).toMatch(/Path=\/portal/);
    expect(cookie).toMatch(/Max-Age=86400/);
    expect(await web.page("/portal")).toContain("Overview");

    const answers: string[] = [];
    // used
    answers.push(await (await new WebClient().post("/portal/enter", { code: link.code })).text());
    // unknown (well-formed) and malformed
    answers.push(await (await new WebClient().post("/portal/enter", { code: "A".repeat(43) })).text());
    answers.push(await (await new WebClient().post("/portal/enter", { code: "<script>" })).text());
    // expired: valid for 15 minutes, not a millisecond more
    const late = await portalLink(tenantId);
    clock.set("2027-03-02T10:15:00.000Z");
    const expired = await new WebClient().post("/portal/enter", { code: late.code });
    expect(expired.status).toBe(400);
    answers.push(await expired.text());
    for (const html of answers) expect(html).toContain(INVALID);
    expect(new Set(answers.map((a) => a.replace(/req_[a-z0-9]+/g, ""))).size).toBe(1);
  });

  it("set a cookie without Secure only on localhost (npm start serves plain http://127.0.0.1)", async () => {
    const { tenantId } = await seedTenant();
    const { code } = await portalLink(tenantId);
    const res = await exports.default.fetch(
      new Request("http://127.0.0.1:8787/portal/enter", {
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          origin: "http://127.0.0.1:8787",
        },
        body: new URLSearchParams({ code }).toString(),
      }),
    );
    expect(res.status).toBe(303);
    const cookie = res.headers.getAll("set-cookie").join("\n");
    expect(cookie).toMatch(/gw_portal=.*HttpOnly/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it("make one session however often the button is pressed at once", async () => {
    const { tenantId } = await seedTenant();
    const { code } = await portalLink(tenantId);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => new WebClient().post("/portal/enter", { code })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([303, 400, 400, 400, 400]);
    const sessions = await withDb((db) =>
      db.select().from(webSessions).where(eq(webSessions.tenantId, tenantId)),
    );
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.tokenHash).toMatch(/^[0-9a-f]{64}$/); // the cookie's value is never stored
  });
});

describe("the portal session", () => {
  it("is required: a page without one goes to sign-in, a post gets 401", async () => {
    const web = new WebClient();
    const page = await web.get("/portal");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/portal/signin");
    expect(await web.page("/portal/signin")).toContain("portal link your API provider gave you");
    const post = await web.post("/portal/logout", { _csrf: "x" });
    expect(post.status).toBe(401);
  });

  it("lasts 24 hours", async () => {
    const { tenantId } = await seedTenant();
    clock.set("2027-03-03T10:00:00.000Z");
    const web = await portalSession(tenantId);
    clock.set("2027-03-04T09:59:59.999Z");
    expect((await web.get("/portal")).status).toBe(200);
    clock.set("2027-03-04T10:00:00.000Z");
    expect((await web.get("/portal")).status).toBe(303);
  });

  it("refuses a state-changing request without the session's CSRF value or from another origin", async () => {
    const { tenantId } = await seedTenant();
    const web = await portalSession(tenantId);
    const csrf = csrfOf(await web.page("/portal"));
    // no token
    expect((await web.post("/portal/logout", {})).status).toBe(403);
    // a wrong token
    expect((await web.post("/portal/logout", { _csrf: "0".repeat(64) })).status).toBe(403);
    // the right token, but posted by another site's page
    const crossSite = await web.post(
      "/portal/logout",
      { _csrf: csrf },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    expect(crossSite.status).toBe(403);
    // still signed in after all three
    expect((await web.get("/portal")).status).toBe(200);
  });

  it("ends at logout: the same cookie, replayed, no longer works", async () => {
    const { tenantId } = await seedTenant();
    const web = await portalSession(tenantId);
    const stolen = new Map(web.cookies);
    const csrf = csrfOf(await web.page("/portal"));
    const out = await web.post("/portal/logout", { _csrf: csrf });
    expect(out.status).toBe(200);
    expect(web.cookies.has("gw_portal")).toBe(false);
    const replay = new WebClient();
    for (const [k, v] of stolen) replay.cookies.set(k, v);
    expect((await replay.get("/portal")).status).toBe(303);
  });

  it("shows only its own tenant, with every tenant-supplied string escaped", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    await withDb((db) =>
      db.update(tenants).set({ name: `<script>alert(1)</script> & "A"` }).where(eq(tenants.id, a.tenantId)),
    );
    const web = await portalSession(a.tenantId);
    const html = await web.page("/portal");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;A&quot;");
    expect(html).not.toContain("<script>alert(1)");
    expect(html).not.toContain(b.slug);
  });

  it("carries a strict CSP, no framing, no referrer and no caching", async () => {
    const { tenantId } = await seedTenant();
    const web = await portalSession(tenantId);
    const res = await web.get("/portal");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html.startsWith('<!doctype html><html lang="en">')).toBe(true); // standards mode
  });
});

describe("the console session", () => {
  it("starts with the admin token only, and is no portal session", async () => {
    const wrong = await new WebClient().post("/console/login", { token: "not-it" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getAll("set-cookie")).toEqual([]);
    expect(await wrong.text()).toContain("That is not the admin token.");

    const web = await consoleSession();
    const { slug, tenantId } = await seedTenant();
    expect(await web.page("/console")).toContain(slug);
    // The console cookie opens no portal, and a portal cookie opens no console.
    expect((await web.get("/portal")).status).toBe(303);
    const portal = await portalSession(tenantId);
    expect((await portal.get("/console")).status).toBe(303);
  });

  it("refuses a sign-in posted from another site (no login CSRF)", async () => {
    const res = await new WebClient().post(
      "/console/login",
      { token: "test-admin-token" },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    expect(res.status).toBe(403);
    expect(res.headers.getAll("set-cookie")).toEqual([]);
  });

  it("ends at logout", async () => {
    const web = await consoleSession();
    const csrf = csrfOf(await web.page("/console"));
    const out = await web.post("/console/logout", { _csrf: csrf });
    expect(out.status).toBe(303);
    expect((await web.get("/console")).status).toBe(303);
  });
});
