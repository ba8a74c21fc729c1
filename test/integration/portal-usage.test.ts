/**
 * The portal's usage page (`GET /portal/usage`) and its download (`GET /portal/usage/export`): the
 * same bytes as the tenant API's export, as an attachment named by the range; only the session's
 * tenant's rows; bad ranges and formats refused with 400; a session required.
 */
import { describe, expect, it } from "vitest";
import { controlledClock } from "../support/clock";
import { bearer, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver } from "../support/metering";
import { portalSession, WebClient } from "../support/web";

const clock = controlledClock();

/** Makes a call per path through the gateway as tenant `t` and stores their usage in Postgres. */
async function traffic(t: { key: string; tenantId: string }, paths: string[]): Promise<void> {
  const events = await captureUsage(
    async () => {
      for (const path of paths) await (await gateway(path, { headers: bearer(t.key) })).arrayBuffer();
    },
    paths.length,
    t.tenantId,
  );
  await deliver(events);
}

describe("portal usage page", () => {
  it("offers a range and a format, and is in the portal's navigation", async () => {
    const t = await seedTenant();
    clock.set("2027-06-15T10:20:30.000Z");
    const web = await portalSession(t.tenantId);
    const html = await web.page("/portal/usage");
    expect(html).toContain('<a href="/portal/usage" aria-current="page">Usage</a>');
    expect(html).toContain('<form method="get" action="/portal/usage/export"');
    expect(html).toContain('name="from" type="datetime-local" value="2027-06-01T00:00"');
    expect(html).toContain('name="to" type="datetime-local" value="2027-06-15T10:21"');
    expect(html).toContain('<option value="ndjson">');
    // The last 24 hours, up to the end of the current hour.
    expect(html).toContain(
      'href="/portal/usage/export?format=csv&amp;from=2027-06-14T11:00:00.000Z&amp;to=2027-06-15T11:00:00.000Z"',
    );
    expect(await web.page("/portal")).toContain('<a href="/portal/usage">Usage</a>');
  });
});

describe("portal usage export", () => {
  it("streams exactly what /gateway/v1/usage/export streams, as an attachment named by the range", async () => {
    const t = await seedTenant({ plan: { entitlements: ["api", "reports"] } });
    clock.set("2027-06-16T08:00:00.000Z");
    await traffic(t, [`/v1/a/${uniq()}`, `/v1/reports/${uniq()}`, `/v1/b/${uniq()}?status=404`]);
    clock.set("2027-06-16T09:30:00.000Z");
    await traffic(t, [`/v1/c/${uniq()}?status=503`, `/v1/d/${uniq()}`]);
    const web = await portalSession(t.tenantId);
    const from = "2027-06-16T00:00:00.000Z";
    const to = "2027-06-17T00:00:00.000Z";
    for (const [format, type] of [
      ["csv", "text/csv; charset=utf-8"],
      ["ndjson", "application/x-ndjson"],
    ] as const) {
      const api = await gateway(`/gateway/v1/usage/export?format=${format}&from=${from}&to=${to}`, {
        headers: bearer(t.key),
      });
      const portal = await web.get(`/portal/usage/export?format=${format}&from=${from}&to=${to}`);
      expect(portal.status).toBe(200);
      expect(portal.headers.get("content-type")).toBe(type);
      expect(portal.headers.get("content-disposition")).toBe(
        `attachment; filename="usage-20270616T000000Z-20270617T000000Z.${format}"`,
      );
      const mine = new Uint8Array(await portal.arrayBuffer());
      const theirs = new Uint8Array(await api.arrayBuffer());
      expect(mine).toEqual(theirs);
      const lines = new TextDecoder().decode(mine).trimEnd().split("\n");
      expect(lines).toHaveLength(format === "csv" ? 6 : 5);
    }
    // The form's datetime-local values are UTC: the same file.
    const local = await web.get("/portal/usage/export?format=csv&from=2027-06-16T00:00&to=2027-06-17T00:00");
    const iso = await web.get(`/portal/usage/export?format=csv&from=${from}&to=${to}`);
    expect(await local.text()).toBe(await iso.text());
    // A narrower range: only the 09:30 calls.
    const later = await web.get(
      "/portal/usage/export?format=ndjson&from=2027-06-16T09:00&to=2027-06-16T10:00",
    );
    const rows = (await later.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { status: number });
    expect(rows.map((r) => r.status).sort()).toEqual([200, 503]);
  });

  it("never streams another tenant's rows, whatever the query says", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    clock.set("2027-06-18T12:00:00.000Z");
    await traffic(b, [`/v1/b/${uniq()}`, `/v1/b/${uniq()}`]);
    const asA = await portalSession(a.tenantId);
    const q = `from=2027-06-18T00:00&to=2027-06-19T00:00&tenant=${b.tenantId}&tenantId=${b.tenantId}`;
    const csv = await asA.get(`/portal/usage/export?format=csv&${q}`);
    expect(csv.status).toBe(200);
    expect(await csv.text()).toBe(
      "id,ts,key_id,env,method,route,status,billable,units,bytes_in,bytes_out,latency_ms\n",
    );
    expect(await (await asA.get(`/portal/usage/export?format=ndjson&${q}`)).text()).toBe("");
    const asB = await portalSession(b.tenantId);
    expect(
      (await (await asB.get(`/portal/usage/export?format=ndjson&${q}`)).text()).trimEnd().split("\n"),
    ).toHaveLength(2);
  });

  it("refuses a bad range or format with 400: the form again for a browser, problem+json otherwise", async () => {
    const t = await seedTenant();
    const web = await portalSession(t.tenantId);
    const bad = [
      "format=csv&from=2027-06-02T00:00&to=2027-06-01T00:00",
      "format=csv&from=2027-06-01T00:00&to=2027-06-01T00:00",
      "format=csv&from=2026-01-01T00:00&to=2027-01-02T00:01",
      "format=csv&to=2027-06-01T00:00",
      "format=csv&from=soon&to=2027-06-01T00:00",
      "format=xml&from=2027-06-01T00:00&to=2027-06-02T00:00",
      "format=toString&from=2027-06-01T00:00&to=2027-06-02T00:00",
    ];
    for (const query of bad) {
      const page = await web.get(`/portal/usage/export?${query}`);
      expect(page.status, query).toBe(400);
      expect(page.headers.get("content-disposition")).toBeNull();
      const html = await page.text();
      expect(html).toContain('class="notice notice-error"');
      expect(html).toContain('action="/portal/usage/export"');
      const problem = await web.send(`/portal/usage/export?${query}`, {
        headers: { accept: "application/json" },
      });
      expect(problem.status, query).toBe(400);
      expect(problem.headers.get("content-type")).toContain("application/problem+json");
      expect((await problem.json<{ code: string }>()).code).toBe("validation_failed");
    }
    // What was typed comes back escaped.
    const xss = await web.get(
      `/portal/usage/export?format=csv&from=${encodeURIComponent('"><script>alert(1)</script>')}&to=x`,
    );
    expect(xss.status).toBe(400);
    const html = await xss.text();
    expect(html).not.toContain("<script>alert");
    expect(html).toContain("&quot;&gt;&lt;script&gt;");
    // 366 days is the most one file holds.
    const longest = await web.get(
      "/portal/usage/export?format=ndjson&from=2026-01-01T00:00&to=2027-01-02T00:00",
    );
    expect(longest.status).toBe(200);
    await longest.arrayBuffer();
  });

  it("spends the tenant API's export cost from the management bucket both share: 10 downloads, then 429", async () => {
    const t = await seedTenant();
    // The clock stands still: the bucket (300, +5/s) does not refill meanwhile.
    clock.set("2027-06-20T10:00:00.000Z");
    const web = await portalSession(t.tenantId);
    const q = "format=csv&from=2027-06-20T00:00&to=2027-06-21T00:00";
    for (let i = 0; i < 10; i++) {
      const ok = await web.get(`/portal/usage/export?${q}`);
      expect(ok.status, `download ${i + 1}`).toBe(200);
      await ok.arrayBuffer();
    }
    const refused = await web.send(`/portal/usage/export?${q}`, { headers: { accept: "application/json" } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("6");
    expect(refused.headers.get("content-disposition")).toBeNull();
    expect((await refused.json<{ code: string }>()).code).toBe("rate_limited");
    // The tenant API's export draws on the same bucket.
    const api = await gateway(
      "/gateway/v1/usage/export?format=csv&from=2027-06-20T00:00:00Z&to=2027-06-21T00:00:00Z",
      {
        headers: bearer(t.key),
      },
    );
    expect(api.status).toBe(429);
    // A browser gets the error as a page.
    const page = await web.get(`/portal/usage/export?${q}`);
    expect(page.status).toBe(429);
    expect(page.headers.get("content-type")).toContain("text/html");
  });

  it("needs a session: without one it sends to sign-in and streams nothing", async () => {
    const res = await new WebClient().get(
      "/portal/usage/export?format=csv&from=2027-06-01T00:00&to=2027-06-02T00:00",
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/portal/signin");
    expect(res.headers.get("content-disposition")).toBeNull();
    expect((await new WebClient().get("/portal/usage")).status).toBe(303);
  });
});
