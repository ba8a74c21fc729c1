/** The usage APIs: current windows, timeseries, streamed export, and tenant isolation on all of them. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import { admin, bearer, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

/** Writes `n` synthetic events for a tenant, one per second from `start`. */
async function seedEvents(tenantId: string, keyId: string, n: number, start: number): Promise<void> {
  const { db, close } = openDb(env);
  try {
    for (let offset = 0; offset < n; offset += 1000) {
      const batch: UsageEvent[] = [];
      for (let i = offset; i < Math.min(n, offset + 1000); i++) {
        batch.push({
          id: `req_${uniq()}${uniq()}${uniq()}`.slice(0, 30).padEnd(30, "0"),
          tenantId,
          keyId,
          env: "live",
          method: i % 2 ? "POST" : "GET",
          route: i % 3 ? "/v1/" : "/v1/reports/",
          status: i % 10 === 0 ? 404 : 200,
          billable: true,
          units: i % 3 ? 1 : 5,
          bytesIn: 10,
          bytesOut: 100,
          latencyMs: 20 + (i % 50),
          ts: iso(start + i * 1000),
        });
      }
      await writeUsageBatch(db, batch);
    }
  } finally {
    await close();
  }
}

describe("usage API", () => {
  it("reports the current period per window from the live counters", async () => {
    const t = await seedTenant({
      plan: { burstCapacity: 10, refillTokens: 1, refillPeriodSeconds: 3600, dailyQuota: 100 },
    });
    for (let i = 0; i < 3; i++) await gateway(`/v1/u/${i}`, { headers: bearer(t.key) });
    const usage = await expectJson<{
      tenant: string;
      burst: { remaining: number };
      daily: { used: number; limit: number; remaining: number };
      monthly: { used: number; limit: null };
    }>(await gateway("/gateway/v1/usage", { headers: bearer(t.key) }), 200);
    expect(usage.tenant).toBe(t.slug);
    expect(usage.burst.remaining).toBe(7);
    expect(usage.daily).toMatchObject({ used: 3, limit: 100, remaining: 97 });
    expect(usage.monthly).toMatchObject({ used: 3, limit: null });
    const viaAdmin = await expectJson<{ daily: { used: number } }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/usage`),
      200,
    );
    expect(viaAdmin.daily.used).toBe(3);
  });

  it("returns hourly and daily timeseries by route with latency percentiles", async () => {
    const t = await seedTenant();
    // Midnight UTC two days ago: both hours fall in one day bucket, whatever time the test runs.
    const start = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;
    await seedEvents(t.tenantId, t.keyId, 7200, start); // two hours, one event per second
    const q = `from=${iso(start)}&to=${iso(start + 2 * HOUR)}`;
    const hourly = await expectJson<{
      data: {
        bucketStart: string;
        route: string;
        requests: number;
        billableUnits: number;
        statuses: Record<string, number>;
        latencyMs: { p50: number };
      }[];
    }>(await gateway(`/gateway/v1/usage/timeseries?granularity=hour&${q}`, { headers: bearer(t.key) }), 200);
    expect(hourly.data.map((p) => [p.bucketStart, p.route])).toEqual([
      [iso(start), "/v1/"],
      [iso(start), "/v1/reports/"],
      [iso(start + HOUR), "/v1/"],
      [iso(start + HOUR), "/v1/reports/"],
    ]);
    expect(hourly.data.reduce((a, p) => a + p.requests, 0)).toBe(7200);
    expect(hourly.data.reduce((a, p) => a + p.billableUnits, 0)).toBe(4800 + 2400 * 5);
    expect(hourly.data[0]?.statuses).toHaveProperty("4xx");
    expect(hourly.data[0]?.latencyMs.p50).toBe(50);
    // `&route=`: every third event is on /v1/reports/ (2,400 of 7,200); the other route is left out.
    const daily = (filter: string) =>
      gateway(`/gateway/v1/usage/timeseries?granularity=day&${q}${filter}`, { headers: bearer(t.key) });
    const all = await expectJson<{ data: { route: string; requests: number }[] }>(await daily(""), 200);
    expect(new Set(all.data.map((p) => p.route))).toEqual(new Set(["/v1/", "/v1/reports/"]));
    const reports = await expectJson<{ data: { route: string; requests: number }[] }>(
      await daily("&route=/v1/reports/"),
      200,
    );
    expect(reports.data.length).toBeGreaterThan(0);
    expect(reports.data.reduce((a, p) => a + p.requests, 0)).toBe(2400);
    expect(reports.data.filter((p) => p.route !== "/v1/reports/")).toEqual([]);
    const bad = await gateway(
      `/gateway/v1/usage/timeseries?granularity=hour&from=${iso(start)}&to=${iso(start + 40 * 86_400_000)}`,
      {
        headers: bearer(t.key),
      },
    );
    expect(bad.status).toBe(400);
  });

  it("returns every bucket that overlaps the range, whole: a day asked for from noon, an hour from half past", async () => {
    const t = await seedTenant();
    const midnight = Math.floor(Date.now() / DAY) * DAY - 3 * DAY;
    await seedEvents(t.tenantId, t.keyId, 600, midnight + 10 * HOUR); // 10:00–10:10 that day
    const series = async (granularity: string, from: number, to: number) =>
      (
        await expectJson<{ data: { bucketStart: string; requests: number }[] }>(
          await gateway(
            `/gateway/v1/usage/timeseries?granularity=${granularity}&from=${iso(from)}&to=${iso(to)}`,
            {
              headers: bearer(t.key),
            },
          ),
          200,
        )
      ).data.map((p) => [p.bucketStart, p.requests]);
    const sum = (points: (string | number)[][]) => points.reduce((a, p) => a + Number(p[1]), 0);
    const days = await series("day", midnight + 12 * HOUR, midnight + 36 * HOUR);
    expect(new Set(days.map((p) => p[0]))).toEqual(new Set([iso(midnight)]));
    expect(sum(days)).toBe(600);
    const hours = await series("hour", midnight + 10 * HOUR + 30 * 60_000, midnight + 11 * HOUR);
    expect(new Set(hours.map((p) => p[0]))).toEqual(new Set([iso(midnight + 10 * HOUR)]));
    expect(sum(hours)).toBe(600);
    // A range that ends where the bucket starts does not overlap it.
    expect(await series("day", midnight - DAY, midnight)).toEqual([]);
  });

  it("streams a large export as CSV and NDJSON, page by page", { timeout: 60_000 }, async () => {
    const t = await seedTenant();
    const start = Math.floor(Date.now() / HOUR) * HOUR - 72 * HOUR;
    await seedEvents(t.tenantId, t.keyId, 5000, start);
    const q = `from=${iso(start)}&to=${iso(start + 6 * HOUR)}`;
    const res = await gateway(`/gateway/v1/usage/export?format=csv&${q}`, { headers: bearer(t.key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let chunks = 0;
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      text += decoder.decode(value, { stream: true });
    }
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toBe(
      "id,ts,key_id,env,method,route,status,billable,units,bytes_in,bytes_out,latency_ms",
    );
    expect(lines).toHaveLength(5001);
    expect(new Set(lines.slice(1).map((l) => l.split(",")[0])).size).toBe(5000);
    expect(chunks).toBeGreaterThanOrEqual(5);

    const nd = await gateway(`/gateway/v1/usage/export?format=ndjson&${q}`, { headers: bearer(t.key) });
    const rows = (await nd.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { ts: string; units: number });
    expect(rows).toHaveLength(5000);
    expect(rows[0]?.ts).toBe(iso(start));
  });

  it("never shows one tenant's usage to another, through any endpoint", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const start = Math.floor(Date.now() / HOUR) * HOUR - 96 * HOUR;
    await seedEvents(b.tenantId, b.keyId, 50, start);
    const q = `from=${iso(start)}&to=${iso(start + HOUR)}`;
    const series = await expectJson<{ data: unknown[] }>(
      await gateway(`/gateway/v1/usage/timeseries?${q}`, { headers: bearer(a.key) }),
      200,
    );
    expect(series.data).toEqual([]);
    const exported = await (
      await gateway(`/gateway/v1/usage/export?format=ndjson&${q}`, { headers: bearer(a.key) })
    ).text();
    expect(exported).toBe("");
    const own = await (
      await gateway(`/gateway/v1/usage/export?format=ndjson&${q}`, { headers: bearer(b.key) })
    ).text();
    expect(own.trimEnd().split("\n")).toHaveLength(50);
    for (const path of [
      `/admin/v1/tenants/${b.tenantId}/usage`,
      `/admin/v1/tenants/${b.tenantId}/usage/export?${q}`,
    ]) {
      expect((await gateway(path, { headers: bearer(a.key) })).status).toBe(401);
    }
  });

  it("serves interactive docs for the OpenAPI document", async () => {
    const res = await gateway("/gateway/docs");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("/gateway/openapi.json");
    const doc = await (await gateway("/gateway/openapi.json")).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/gateway/v1/usage",
        "/gateway/v1/usage/timeseries",
        "/gateway/v1/usage/export",
        "/admin/v1/tenants/{id}/usage/export",
        "/admin/v1/reconciliation",
      ]),
    );
  });
});
