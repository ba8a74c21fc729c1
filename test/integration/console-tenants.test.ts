/**
 * The console's tenants: the list (search, status filter, today's usage), one tenant's page, and its
 * forms — each through the same services as the admin API, so a change in the console reaches the
 * very next proxied request — plus the console's door (no portal session, CSRF, escaping).
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { apiKeys, tenants } from "../../schema";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { newId } from "../../workers/shared/ids";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, bearer, createPlan, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { deliver } from "../support/metering";
import { usageEvent } from "../support/usage-events";
import { consoleSession, csrfOf, portalSession, WebClient } from "../support/web";

const clock = controlledClock();

/** A usage event with its own id, at `at` (default now). */
const ev = (over: Partial<UsageEvent> & { at?: number } = {}) => {
  const { at = Date.now(), ...rest } = over;
  return usageEvent({ id: newId("req"), ts: new Date(at).toISOString(), ...rest });
};

/** The `<tr data-tenant-id>` ids of a tenants page, in order. */
const listed = (html: string) => [...html.matchAll(/<tr data-tenant-id="([^"]+)"/g)].map((m) => m[1]);

/** A row's cells as text. */
function rowOf(html: string, tenantId: string): string[] {
  const row = new RegExp(`<tr data-tenant-id="${tenantId}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
  return [...row.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) =>
    (m[1] ?? "").replace(/<[^>]+>/g, " ").trim(),
  );
}

async function postForm(web: WebClient, page: string, action: string, form: Record<string, string>) {
  const csrf = csrfOf(await web.page(page));
  return web.post(action, { _csrf: csrf, ...form });
}

describe("the tenants list", () => {
  it("finds a tenant by slug, name or id, links to its page, and filters by status", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const name = `Zebra Crossing ${uniq()}`;
    await withDb((db) => db.update(tenants).set({ name }).where(eq(tenants.id, a.tenantId)));
    const web = await consoleSession();

    const bySlug = await web.page(`/console?q=${a.slug}`);
    expect(listed(bySlug)).toEqual([a.tenantId]);
    expect(bySlug).toContain(`href="/console/tenants/${a.tenantId}"`);
    expect(listed(await web.page(`/console?q=${encodeURIComponent(name.toLowerCase())}`))).toEqual([
      a.tenantId,
    ]);
    expect(listed(await web.page(`/console?q=${b.tenantId}`))).toEqual([b.tenantId]);
    // LIKE's wildcards are plain characters in a search.
    expect(listed(await web.page("/console?q=%25%25%25nothing"))).toEqual([]);

    await expectJson(await admin("PATCH", `/admin/v1/tenants/${b.tenantId}`, { status: "suspended" }), 200);
    const suspended = await web.page(`/console?status=suspended&q=${b.slug}`);
    expect(listed(suspended)).toEqual([b.tenantId]);
    expect(listed(await web.page(`/console?status=active&q=${b.slug}`))).toEqual([]);
    expect((await web.get("/console?status=bogus")).status).toBe(400);
    expect((await web.get(`/console?q=${"x".repeat(201)}`)).status).toBe(400);
    expect((await web.get("/console?cursor=not-a-cursor")).status).toBe(400);
    expect((await web.get("/console?limit=0")).status).toBe(400);
  });

  it("pages newest first with a cursor, neither losing nor repeating a tenant", async () => {
    const web = await consoleSession();
    const seen: string[] = [];
    // Small pages, so there are many whatever else the shared database holds.
    await seedTenant();
    await seedTenant();
    await seedTenant();
    let path: string | null = "/console?limit=2";
    for (let i = 0; path && i < 1000; i++) {
      const html = await web.page(path);
      seen.push(...(listed(html) as string[]));
      const next = /<a href="([^"]+)" rel="next">/.exec(html)?.[1];
      path = next ? next.replace(/&amp;/g, "&") : null;
    }
    const all = await withDb((db) => db.select({ id: tenants.id }).from(tenants));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(all.length);
  });

  it("shows today's requests, units, 5xx rate and p95 from the rollups", async () => {
    clock.set("2027-05-04T12:00:00.000Z");
    const t = await seedTenant();
    const at = Date.parse("2027-05-04T09:00:00.000Z");
    const events = [
      ...Array.from({ length: 18 }, (_, i) =>
        ev({ tenantId: t.tenantId, keyId: t.keyId, status: 200, units: 2, latencyMs: 40, at: at + i }),
      ),
      ev({ tenantId: t.tenantId, keyId: t.keyId, status: 502, billable: false, latencyMs: 900, at }),
      ev({ tenantId: t.tenantId, keyId: t.keyId, status: 503, billable: false, latencyMs: 900, at }),
      // yesterday: not today's
      ev({ tenantId: t.tenantId, keyId: t.keyId, status: 200, units: 7, at: at - 86_400_000 }),
    ];
    const result = await deliver([{ v: 2, events }]);
    expect(result.explicitAcks).toHaveLength(1);
    const web = await consoleSession();
    const cells = rowOf(await web.page(`/console?q=${t.slug}`), t.tenantId);
    // tenant, status, plan, requests, units, 5xx rate, p95
    expect(cells.slice(3)).toEqual(["20", "36", "10.0 %", "1000 ms"]);
  });
});

describe("one tenant", () => {
  it("renders its facts, usage, latency and keys; an unknown id is a 404 page", async () => {
    clock.set("2027-05-05T12:00:00.000Z");
    const t = await seedTenant();
    await deliver([
      {
        v: 2,
        events: [
          ev({ tenantId: t.tenantId, keyId: t.keyId, route: "/v1/", status: 200, latencyMs: 8 }),
          ev({ tenantId: t.tenantId, keyId: t.keyId, route: "/v1/reports/", status: 500, latencyMs: 300 }),
        ],
      },
    ]);
    const web = await consoleSession();
    const html = await web.page(`/console/tenants/${t.tenantId}`);
    expect(html).toContain(t.slug);
    expect(html).toContain(t.plan.name);
    expect(html).toContain('<form id="plan-form"');
    expect(html).toMatch(/p50 10 ms · p95 500 ms · p99 500 ms/);
    expect(html).toMatch(/2xx 1 \(50\.0 %\) · 4xx 0 \(–\)|2xx 1 \(50\.0 %\) · 4xx 0 \(0\.0 %\)/);
    expect(html).toContain(`data-key-id="${t.keyId}"`);
    expect(html).toContain("/v1/reports/");
    // The chart's data (the hourly table's numbers) and its scripts, from this origin only.
    const series = /id="usage-chart"[^>]*data-series="([^"]+)"/.exec(html)?.[1]?.replace(/&quot;/g, '"');
    // Every hour of the last 24 (quiet ones as zeros), oldest first, ending with the hour of the calls.
    const points = JSON.parse(series ?? "null") as number[][];
    expect(points).toHaveLength(24);
    expect(points.at(-1)).toEqual([Date.parse("2027-05-05T12:00:00.000Z") / 1000, 2, 0, 1]);
    expect(points[0]).toEqual([Date.parse("2027-05-04T13:00:00.000Z") / 1000, 0, 0, 0]);
    expect(html).toContain('<script src="/_static/vendor/uPlot.iife.min.js" defer="">');
    expect(html).toContain('<script src="/_static/console-charts.js" defer="">');
    const missing = await web.get("/console/tenants/ten_nope");
    expect(missing.status).toBe(404);
  });

  it("changes the plan: the next proxied response carries the new plan's limit", async () => {
    clock.set("2027-05-06T10:00:00.000Z");
    // Bursts bigger than the quotas, so the daily window is the one X-RateLimit-Limit describes.
    const wide = { burstCapacity: 100_000, refillTokens: 100_000 };
    const t = await seedTenant({ plan: { ...wide, dailyQuota: 5000 } });
    const bigger = await createPlan({ ...wide, dailyQuota: 7777 });
    const before = await gateway("/v1/plan-a", { headers: bearer(t.key) });
    expect(before.headers.get("x-ratelimit-limit")).toBe("5000");
    clock.advance(1000);
    const web = await consoleSession();
    const res = await postForm(web, `/console/tenants/${t.tenantId}`, `/console/tenants/${t.tenantId}/plan`, {
      planId: bigger.id,
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/console/tenants/${t.tenantId}?notice=plan`);
    expect(await web.page(res.headers.get("location") ?? "")).toContain("Plan changed.");
    const after = await gateway("/v1/plan-b", { headers: bearer(t.key) });
    expect(after.status).toBe(200);
    expect(after.headers.get("x-ratelimit-limit")).toBe("7777");
    expect(after.headers.get("ratelimit-policy")).toContain('"daily";q=7777;');
    expect(after.headers.get("x-ratelimit-plan")).toBe(bigger.name);
    // As through the API: the same tenant answer.
    const api = await expectJson<{ planId: string }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}`),
      200,
    );
    expect(api.planId).toBe(bigger.id);

    const unknown = await postForm(
      web,
      `/console/tenants/${t.tenantId}`,
      `/console/tenants/${t.tenantId}/plan`,
      {
        planId: "plan_nope",
      },
    );
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("No such plan.");
  });

  it("suspends (the next request is 403 tenant_suspended) and reinstates (200)", async () => {
    clock.set("2027-05-07T10:00:00.000Z");
    const t = await seedTenant();
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    clock.advance(1000);
    const suspend = await postForm(web, page, `${page}/status`, { status: "suspended" });
    expect(suspend.status).toBe(303);
    const refused = await gateway("/v1/s", { headers: bearer(t.key) });
    expect(refused.status).toBe(403);
    expect((await refused.json<{ code: string }>()).code).toBe("tenant_suspended");
    const html = await web.page(page);
    expect(html).toContain("Reinstate");
    expect(html).toContain("set by operator");
    clock.advance(1000);
    expect((await postForm(web, page, `${page}/status`, { status: "active" })).status).toBe(303);
    expect((await gateway("/v1/r", { headers: bearer(t.key) })).status).toBe(200);
    expect((await postForm(web, page, `${page}/status`, { status: "deleted" })).status).toBe(400);
  });

  it("saves limit overrides (blank = the plan's), and refuses bad ones with the reason, changing nothing", async () => {
    clock.set("2027-05-08T10:00:00.000Z");
    const t = await seedTenant({ plan: { burstCapacity: 50 } });
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    const blank = {
      burstCapacity: "",
      refillTokens: "",
      refillPeriodSeconds: "",
      dailyQuota: "",
      monthlyQuota: "",
    };
    clock.advance(1000);
    expect(
      (await postForm(web, page, `${page}/overrides`, { ...blank, burstCapacity: "7", dailyQuota: "900" }))
        .status,
    ).toBe(303);
    const after = await gateway("/v1/o", { headers: bearer(t.key) });
    expect(after.headers.get("ratelimit-policy")).toContain('"burst";q=7;');
    expect(after.headers.get("ratelimit-policy")).toContain('"daily";q=900;');
    const stored = await withDb((db) => db.query.tenants.findFirst({ where: eq(tenants.id, t.tenantId) }));
    expect(stored?.overrides).toEqual({ burstCapacity: 7, dailyQuota: 900 });

    for (const bad of [
      { burstCapacity: "0" },
      { burstCapacity: "-3" },
      { refillTokens: "1e3" },
      { dailyQuota: "lots" },
    ]) {
      const res = await postForm(web, page, `${page}/overrides`, { ...blank, ...bad });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/notice-error/);
    }
    const unchanged = await withDb((db) => db.query.tenants.findFirst({ where: eq(tenants.id, t.tenantId) }));
    expect(unchanged?.overrides).toEqual({ burstCapacity: 7, dailyQuota: 900 });

    clock.advance(1000);
    expect((await postForm(web, page, `${page}/overrides`, blank)).status).toBe(303);
    const back = await withDb((db) => db.query.tenants.findFirst({ where: eq(tenants.id, t.tenantId) }));
    expect(back?.overrides).toEqual({});
    const plan = await gateway("/v1/o2", { headers: bearer(t.key) });
    expect(plan.headers.get("ratelimit-policy")).toContain('"burst";q=50;');
  });

  it("revokes a key (401 on its next request), never a key of another tenant", async () => {
    const t = await seedTenant();
    const other = await seedTenant();
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    const cross = await postForm(web, page, `${page}/keys/${other.keyId}/revoke`, {});
    expect(cross.status).toBe(404);
    expect((await gateway("/v1/k", { headers: bearer(other.key) })).status).toBe(200);
    expect((await postForm(web, page, `${page}/keys/${t.keyId}/revoke`, {})).status).toBe(303);
    expect((await gateway("/v1/k", { headers: bearer(t.key) })).status).toBe(401);
    const key = await withDb((db) => db.query.apiKeys.findFirst({ where: eq(apiKeys.id, t.keyId) }));
    expect(key?.revokedAt).not.toBeNull();
  });

  it("mints a portal link shown once, which signs in to that tenant's portal", async () => {
    const t = await seedTenant();
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    const res = await postForm(web, page, `${page}/portal-link`, {});
    expect(res.status).toBe(200);
    const html = await res.text();
    const url = /<code id="portal-url">([^<]+)<\/code>/.exec(html)?.[1]?.replace(/&amp;/g, "&") ?? "";
    expect(url).toMatch(/\/portal\/enter\?code=/);
    expect(html).toContain('data-copy="portal-url"');
    const portal = new WebClient();
    const enter = await portal.post("/portal/enter", { code: new URL(url).searchParams.get("code") ?? "" });
    expect(enter.status).toBe(303);
    expect(await portal.page("/portal")).toContain(t.slug);
    // Not shown again on the page.
    expect(await web.page(page)).not.toContain(url);
  });

  it("adjusts a prepaid tenant's credits as the admin API does (actor console), and refuses a debit past the balance", async () => {
    const t = await seedTenant({
      plan: { pricing: { model: "prepaid", currency: "usd", creditPack: { units: 1000, amount: 500 } } },
    });
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    expect((await postForm(web, page, `${page}/credits`, { units: "120", reason: "goodwill" })).status).toBe(
      303,
    );
    const credits = await expectJson<{
      balance: number;
      ledger: { data: { actor: string; reason: string; units: number }[] };
    }>(await admin("GET", `/admin/v1/tenants/${t.tenantId}/credits`), 200);
    expect(credits.balance).toBe(120);
    expect(credits.ledger.data[0]).toMatchObject({ actor: "console", reason: "goodwill", units: 120 });
    expect(await web.page(page)).toContain("120 units");
    const past = await postForm(web, page, `${page}/credits`, { units: "-500", reason: "oops" });
    expect(past.status).toBe(409);
    expect(await past.text()).toContain("would take it below zero");
    expect((await postForm(web, page, `${page}/credits`, { units: "0", reason: "x" })).status).toBe(400);
    expect((await postForm(web, page, `${page}/credits`, { units: "5", reason: "" })).status).toBe(400);
  });
});

describe("the console's door", () => {
  it("opens no console page to a portal session", async () => {
    const t = await seedTenant();
    const portal = await portalSession(t.tenantId);
    for (const path of [
      "/console",
      `/console/tenants/${t.tenantId}`,
      "/console/endpoints",
      "/console/reconciliation",
      "/console/dead-letters",
    ]) {
      const res = await portal.get(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location")).toBe("/console/login");
    }
    const post = await portal.post(`/console/tenants/${t.tenantId}/status`, { status: "suspended" });
    expect(post.status).toBe(401);
  });

  it("refuses a form without the session's CSRF value or from another site, changing nothing", async () => {
    clock.set("2027-05-09T10:00:00.000Z");
    const t = await seedTenant();
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    const csrf = csrfOf(await web.page(page));
    clock.advance(1000);
    expect((await web.post(`${page}/status`, { status: "suspended" })).status).toBe(403);
    expect((await web.post(`${page}/status`, { status: "suspended", _csrf: "0".repeat(64) })).status).toBe(
      403,
    );
    const crossSite = await web.post(
      `${page}/status`,
      { status: "suspended", _csrf: csrf },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    expect(crossSite.status).toBe(403);
    expect((await gateway("/v1/c", { headers: bearer(t.key) })).status).toBe(200);
  });

  it("escapes tenant-supplied strings on the list and the tenant page", async () => {
    const t = await seedTenant();
    const evil = `<script>alert(1)</script> & "${uniq()}"`;
    await withDb((db) => db.update(tenants).set({ name: evil }).where(eq(tenants.id, t.tenantId)));
    const web = await consoleSession();
    for (const path of [`/console?q=${t.slug}`, `/console/tenants/${t.tenantId}`]) {
      const html = await web.page(path);
      expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; &amp;");
      expect(html).not.toContain("<script>alert(1)");
    }
    const search = await web.page(`/console?q=${encodeURIComponent('"><script>x</script>')}`);
    expect(search).not.toContain("<script>x</script>");
  });
});
