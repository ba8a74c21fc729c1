/**
 * The portal overview (`GET /portal`) and its JSON twin (`GET /portal/overview.json`): the live
 * windows are the tenant API's, the endpoint table counts the calls made through the gateway, the
 * percentiles are the rollups' histograms', another tenant's usage never shows, ranges are
 * validated, and the twin answers only to a session.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import type { OverviewData } from "../../workers/web/portal/overview-data";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, bearer, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver } from "../support/metering";
import { csrfOf, portalSession, WebClient } from "../support/web";

const clock = controlledClock();
const HOUR = 3_600_000;
/** The histogram's bucket upper bounds, from the README (latency percentiles are read at this resolution). */
const BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];

async function twin(web: WebClient, query = ""): Promise<OverviewData> {
  return expectJson<OverviewData>(
    await web.send(`/portal/overview.json${query}`, { headers: { accept: "application/json" } }),
    200,
  );
}

/** A row of the page's windows table: the numbers as printed. */
function windowRow(html: string, window: string): Record<string, string> {
  const row = new RegExp(`<tr data-window="${window}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
  const cells: Record<string, string> = {};
  for (const m of row.matchAll(/data-field="(\w+)">([^<]*)</g)) cells[m[1] as string] = m[2] as string;
  return cells;
}

/** The p-th percentile of a histogram, as the upper bound of the bucket it falls in. */
function histogramPercentile(histogram: number[], p: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] ?? 0;
    if (seen >= Math.ceil(p * total)) return BOUNDS[Math.min(i, BOUNDS.length - 1)] as number;
  }
  return null;
}

describe("portal overview: live windows", () => {
  it("shows the same used / limit / remaining / reset as GET /gateway/v1/usage, in the page and its twin", async () => {
    const t = await seedTenant({
      plan: {
        burstCapacity: 10,
        refillTokens: 1,
        refillPeriodSeconds: 3600,
        dailyQuota: 100,
        monthlyQuota: 5000,
      },
    });
    clock.set("2027-05-10T12:30:00.000Z");
    for (let i = 0; i < 3; i++) await (await gateway(`/v1/w/${i}`, { headers: bearer(t.key) })).arrayBuffer();
    const api = await expectJson<Record<string, unknown>>(
      await gateway("/gateway/v1/usage", { headers: bearer(t.key) }),
      200,
    );
    const web = await portalSession(t.tenantId);
    const data = await twin(web);
    expect(data.windows).toEqual({ burst: api.burst, daily: api.daily, monthly: api.monthly });
    expect(data.windows.daily).toMatchObject({ used: 3, limit: 100, remaining: 97 });
    expect(data.windows.burst).toMatchObject({ limit: 10, remaining: 7 });
    expect(data.plan).toBe(t.plan.name);

    const html = await web.page("/portal");
    expect(html).toContain('id="windows"');
    expect(windowRow(html, "burst")).toMatchObject({
      used: "3",
      limit: "10",
      remaining: "7",
      resets: "full in 3 h",
      percent: "30 %",
    });
    expect(windowRow(html, "daily")).toMatchObject({
      used: "3",
      limit: "100",
      remaining: "97",
      resets: "2027-05-11 00:00 UTC",
      percent: "3 %",
    });
    expect(windowRow(html, "monthly")).toMatchObject({
      used: "3",
      limit: "5,000",
      remaining: "4,997",
      resets: "2027-06-01 00:00 UTC",
    });
    expect(html).toContain('class="pct-30"');
    expect(html).toContain("updates within 10 seconds");
    // Reading the overview charges nothing: the API still says 7 burst tokens, 3 used today.
    const again = await expectJson<{ burst: { remaining: number }; daily: { used: number } }>(
      await gateway("/gateway/v1/usage", { headers: bearer(t.key) }),
      200,
    );
    expect(again.burst.remaining).toBe(7);
    expect(again.daily.used).toBe(3);
  });
});

describe("portal overview: traffic and endpoints", () => {
  it("counts every call made through the gateway per route, with 4xx and 5xx apart and billable units", async () => {
    const t = await seedTenant({ plan: { entitlements: ["api", "reports"] } });
    clock.set("2027-05-11T09:15:00.000Z");
    const calls = [
      ...Array.from({ length: 4 }, () => `/v1/ok/${uniq()}`),
      ...Array.from({ length: 2 }, () => `/v1/missing/${uniq()}?status=404`),
      `/v1/broken/${uniq()}?status=503`,
      ...Array.from({ length: 3 }, () => `/v1/reports/${uniq()}`),
    ];
    const events = await captureUsage(
      async () => {
        for (const path of calls) await (await gateway(path, { headers: bearer(t.key) })).arrayBuffer();
      },
      calls.length,
      t.tenantId,
    );
    await deliver(events);

    const web = await portalSession(t.tenantId);
    const data = await twin(web);
    expect(data.range).toMatchObject({
      preset: "24h",
      granularity: "hour",
      from: "2027-05-10T10:00:00.000Z",
      to: "2027-05-11T10:00:00.000Z",
    });
    expect(data.series).toHaveLength(24);
    expect(data.series.at(-1)).toMatchObject({
      bucketStart: "2027-05-11T09:00:00.000Z",
      requests: 10,
      errors4xx: 2,
      errors5xx: 1,
    });
    expect(data.series.slice(0, -1).every((p) => p.requests === 0 && p.p50 === null)).toBe(true);
    expect(data.endpoints.map(({ p95, ...e }) => e)).toEqual([
      { route: "/v1/", requests: 7, errors: 3, errors4xx: 2, errors5xx: 1, errorRate: 3 / 7, units: 6 },
      { route: "/v1/reports/", requests: 3, errors: 0, errors4xx: 0, errors5xx: 0, errorRate: 0, units: 15 },
    ]);

    const html = await web.page("/portal");
    expect(html).toContain('id="traffic-chart"');
    expect(html).toContain('data-src="/portal/overview.json"');
    expect(html).toMatch(/<table id="endpoints">/);
    expect(html).toMatch(
      /<tr data-route="\/v1\/"><th scope="row"><code>\/v1\/<\/code><\/th><td class="num" data-requests="7">7</,
    );
    expect(html).toMatch(/<tr data-route="\/v1\/reports\/">[\s\S]*?data-requests="3"/);
    expect(html).toContain("42.9 %");
    expect(html).toContain(
      '<tr data-bucket="2027-05-11T09:00:00.000Z"><th scope="row">2027-05-11 09:00 UTC</th><td class="num">10</td><td class="num">2</td><td class="num">1</td>',
    );
  });

  it("reads p50, p95 and p99 from the rollups' merged histograms, per bucket and per route", async () => {
    const t = await seedTenant();
    const start = Date.parse("2027-05-12T00:00:00.000Z");
    const latencies = [1, 3, 3, 7, 15, 40, 40, 90, 150, 400, 900, 1500, 4000, 9000, 20000, 45000];
    const events: UsageEvent[] = [];
    latencies.forEach((latencyMs, i) => {
      for (let copy = 0; copy <= i; copy++) {
        events.push({
          id: `req_${uniq()}${uniq()}${uniq()}`.slice(0, 30).padEnd(30, "0"),
          tenantId: t.tenantId,
          keyId: t.keyId,
          env: "live",
          method: "GET",
          route: copy % 2 ? "/v1/" : "/v1/reports/",
          status: 200,
          billable: true,
          units: 1,
          bytesIn: 0,
          bytesOut: 10,
          latencyMs,
          // Two hours: the first 60 events in the first hour, the rest in the second.
          ts: new Date(start + (events.length < 60 ? 0 : HOUR) + copy * 1000).toISOString(),
        });
      }
    });
    const { db, close } = openDb(env);
    try {
      await writeUsageBatch(db, events);
    } finally {
      await close();
    }
    clock.set(start + 2 * HOUR - 1);
    const web = await portalSession(t.tenantId);
    const data = await twin(web, `?range=custom&from=2027-05-12T00:00&to=2027-05-12T02:00&granularity=hour`);

    const rollups = await withDb(async (wdb) => {
      const result = await wdb.execute<{
        bucket_start: string;
        route: string;
        latency_histogram: number[];
      }>(sql`
        SELECT bucket_start, route, latency_histogram FROM usage_rollups
        WHERE tenant_id = ${t.tenantId} AND granularity = 'hour'`);
      return result.rows;
    });
    const merge = (rows: typeof rollups) =>
      rows.reduce<number[]>((acc, r) => r.latency_histogram.map((n, i) => n + (acc[i] ?? 0)), []);
    expect(data.series).toHaveLength(2);
    for (const point of data.series) {
      const h = merge(rollups.filter((r) => new Date(r.bucket_start).toISOString() === point.bucketStart));
      expect(h.reduce((a, b) => a + b, 0)).toBe(point.requests);
      expect([point.p50, point.p95, point.p99]).toEqual([
        histogramPercentile(h, 0.5),
        histogramPercentile(h, 0.95),
        histogramPercentile(h, 0.99),
      ]);
    }
    // The two hours differ, so merging across routes or hours wrongly would show.
    expect(data.series[0]?.p50).not.toBe(data.series[1]?.p50);
    for (const endpoint of data.endpoints) {
      const h = merge(rollups.filter((r) => r.route === endpoint.route));
      expect(endpoint.p95).toBe(histogramPercentile(h, 0.95));
    }
    expect(data.endpoints.reduce((a, e) => a + e.requests, 0)).toBe(events.length);
    const html = await web.page(
      "/portal?range=custom&from=2027-05-12T00:00&to=2027-05-12T02:00&granularity=hour",
    );
    const p95 = data.endpoints[0]?.p95;
    expect(html).toContain(`data-p95="${p95}"`);
  });

  it("shows the last 30 days by day, and a custom range by day", async () => {
    const t = await seedTenant();
    clock.set("2027-05-20T08:00:00.000Z");
    const web = await portalSession(t.tenantId);
    const month = await twin(web, "?range=30d");
    expect(month.range).toMatchObject({
      granularity: "day",
      from: "2027-04-21T00:00:00.000Z",
      to: "2027-05-21T00:00:00.000Z",
    });
    expect(month.series).toHaveLength(30);
    const custom = await twin(web, "?range=custom&from=2027-01-01T00:00&to=2027-03-01T00:00&granularity=day");
    expect(custom.series).toHaveLength(59);
    expect(custom.series[0]?.bucketStart).toBe("2027-01-01T00:00:00.000Z");
  });
});

describe("portal overview: isolation and validation", () => {
  it("never shows another tenant's usage", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    clock.set("2027-05-21T10:00:00.000Z");
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 5; i++)
          await (await gateway(`/v1/b/${uniq()}`, { headers: bearer(b.key) })).arrayBuffer();
      },
      5,
      b.tenantId,
    );
    await deliver(events);
    const asA = await portalSession(a.tenantId);
    // Query parameters naming the other tenant are not a way in.
    const data = await twin(asA, `?tenant=${b.tenantId}&tenantId=${b.tenantId}`);
    expect(data.tenant.id).toBe(a.tenantId);
    expect(data.endpoints).toEqual([]);
    expect(data.series.reduce((n, p) => n + p.requests, 0)).toBe(0);
    expect(data.windows.daily.used).toBe(0);
    const html = await asA.page(`/portal?tenant=${b.tenantId}`);
    expect(html).not.toContain("data-requests=");
    expect(html).not.toContain(b.slug);
    expect(html).toContain("No requests in this range.");
    const asB = await twin(await portalSession(b.tenantId));
    expect(asB.endpoints).toMatchObject([{ route: "/v1/", requests: 5 }]);
  });

  it("refuses a bad range: the page again with what to fix (400), problem+json from the twin", async () => {
    const t = await seedTenant();
    clock.set("2027-05-22T10:00:00.000Z");
    const web = await portalSession(t.tenantId);
    const bad = [
      "?range=custom&from=2027-05-02T00:00&to=2027-05-01T00:00",
      "?range=custom&from=2027-01-01T00:00&to=2027-02-01T00:01&granularity=hour",
      "?range=custom&from=2026-01-01T00:00&to=2027-01-03T00:00&granularity=day",
      "?range=custom&from=yesterday&to=2027-05-01T00:00",
      "?range=custom&from=2027-13-01T00:00&to=2027-05-01T00:00",
      "?range=custom&to=2027-05-01T00:00",
      "?range=custom&from=2027-05-01T00:00&to=2027-05-02T00:00&granularity=minute",
      "?range=7y",
    ];
    for (const query of bad) {
      const page = await web.get(`/portal${query}`);
      expect(page.status, query).toBe(400);
      const html = await page.text();
      expect(html).toContain('class="notice notice-error"');
      expect(html).toContain('id="windows"'); // the live windows still show
      expect(html).not.toContain('id="traffic-chart"');
      const json = await web.send(`/portal/overview.json${query}`, {
        headers: { accept: "application/json" },
      });
      expect(json.status, query).toBe(400);
      expect(json.headers.get("content-type")).toContain("application/problem+json");
      expect((await json.json<{ code: string }>()).code).toBe("validation_failed");
    }
    // 31 days by the hour is the most; ISO instants with an offset are taken too.
    const longest = await twin(web, "?range=custom&from=2027-01-01T00:00:00Z&to=2027-02-01T00:00:00%2B00:00");
    expect(longest.series).toHaveLength(744);
  });

  it("escapes what the request and the tenant's name carry", async () => {
    const plan = await expectJson<{ id: string }>(
      await admin("POST", "/admin/v1/plans", {
        name: `plan-${uniq()}`,
        burstCapacity: 10,
        refillTokens: 10,
        refillPeriodSeconds: 1,
        entitlements: ["api"],
      }),
      201,
    );
    const created = await expectJson<{ tenant: { id: string } }>(
      await admin("POST", "/admin/v1/tenants", {
        slug: `t-${uniq()}`,
        name: `<script>alert("name")</script>`,
        planId: plan.id,
      }),
      201,
    );
    const web = await portalSession(created.tenant.id);
    const res = await web.get(
      `/portal?range=custom&from=${encodeURIComponent('"><script>alert(1)</script>')}&to=x`,
    );
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).not.toContain("<script>alert");
    expect(html).toContain("&lt;script&gt;alert(&quot;name&quot;)");
    expect(html).toContain("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("answers the JSON twin only to a session: none, a forged or a signed-out one is sent to sign-in with no data", async () => {
    const t = await seedTenant();
    const anonymous = await new WebClient().send("/portal/overview.json", {
      headers: { accept: "application/json" },
    });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get("location")).toBe("/portal/signin");
    expect(await anonymous.text()).toBe("");
    const forged = new WebClient();
    forged.cookies.set("gw_portal", "A".repeat(43));
    expect((await forged.send("/portal/overview.json", {})).status).toBe(303);
    const web = await portalSession(t.tenantId);
    expect((await twin(web)).tenant.id).toBe(t.tenantId);
    expect((await web.send("/portal/overview.json", {})).headers.get("cache-control")).toBe("no-store");
    // Signed out: the same cookie no longer reads anything.
    const cookie = web.cookies.get("gw_portal") as string;
    expect((await web.post("/portal/logout", { _csrf: csrfOf(await web.page("/portal")) })).status).toBe(200);
    const after = new WebClient();
    after.cookies.set("gw_portal", cookie);
    expect((await after.send("/portal/overview.json", {})).status).toBe(303);
  });
});
