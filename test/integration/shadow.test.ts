/**
 * Shadow traffic through the real entry: routes in vitest.config.ts name the test origin's
 * `/shadow/…` as their shadow, which differs from the primary on some `/mirror/…` paths
 * (test/support/origin-server.ts). Usage events are captured and delivered to the real consumer, so
 * what lands in Postgres (and what a redelivery does) is under the test's control.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { shadowMismatches, shadowResults } from "../../schema";
import { DEFAULT_RETENTION } from "../../workers/config";
import { verifyGatewayClaims } from "../../workers/edge/claims";
import { PROBLEM_TYPE_BASE } from "../../workers/errors";
import { cutoffs } from "../../workers/retention/policies";
import { pruneExpired } from "../../workers/retention/run";
import { newId } from "../../workers/shared/ids";
import { withDb } from "../support/db";
import { admin, bearer, expectJson, gateway, originCalls, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver } from "../support/metering";
import { usageEvent } from "../support/usage-events";

interface Report {
  route: string;
  shadow: {
    origin: string;
    sampleRate: number;
    methods: string[];
    compareHeaders: string[];
    timeoutMs: number;
  } | null;
  compared: number;
  matched: number;
  mismatched: number;
  failed: number;
  matchRate: number | null;
  latency: { primaryAvgMs: number | null; shadowAvgMs: number | null; deltaMs: number | null };
  mismatches: Array<{ requestId: string; path: string; diff: Record<string, unknown> }>;
}

const encoded = (prefix: string) => encodeURIComponent(prefix);

async function report(prefix: string, query = ""): Promise<Report> {
  return expectJson<Report>(await admin("GET", `/admin/v1/routes/${encoded(prefix)}/shadow${query}`), 200);
}

const counts = (r: Report) => ({
  compared: r.compared,
  matched: r.matched,
  mismatched: r.mismatched,
  failed: r.failed,
});

const delta = (after: Report, before: Report) => ({
  compared: after.compared - before.compared,
  matched: after.matched - before.matched,
  mismatched: after.mismatched - before.mismatched,
  failed: after.failed - before.failed,
});

/** The calls the shadow (`/shadow/…`) and the primary received whose path contains `marker`. */
async function calls(marker: string) {
  const all = await originCalls(marker);
  return {
    shadow: all.filter((c) => c.path.startsWith("/shadow/")),
    primary: all.filter((c) => !c.path.startsWith("/shadow/")),
  };
}

async function usageRows(tenantId: string): Promise<number> {
  return await withDb(async (db) => {
    const rows = await db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM usage_events WHERE tenant_id = ${tenantId}`,
    );
    return Number(rows.rows[0]?.n);
  });
}

describe("shadow traffic", () => {
  it("copies each sampled GET, compares status, body hash and headers, and counts it once in Postgres", async () => {
    const t = await seedTenant({ plan: { dailyQuota: 100 } });
    const run = uniq();
    const before = await report("/v1/mirror/");
    const paths = ["same", "status", "body", "header", "same-again"].map((p) => `/v1/mirror/${p}/${run}`);
    const remaining: string[] = [];
    const events = await captureUsage(
      async () => {
        for (const path of paths) {
          const res = await gateway(path, { headers: bearer(t.key) });
          // The client gets the primary's answer, whatever the shadow said.
          expect(res.status).toBe(200);
          expect(res.headers.get("x-variant")).toBe("a");
          expect(await res.json()).toEqual({ mirror: 1 });
          remaining.push(res.headers.get("x-ratelimit-remaining") ?? "");
        }
      },
      5,
      t.tenantId,
    );

    // One usage event per admitted request, none for the copies; the quota is spent once per request.
    const mine = events.filter((e) => e.tenantId === t.tenantId);
    expect(mine).toHaveLength(5);
    expect(remaining).toEqual(["99", "98", "97", "96", "95"]);
    const byPath = Object.fromEntries(mine.map((e) => [e.shadow?.path.split("/")[3], e.shadow]));
    expect(byPath.same).toMatchObject({ outcome: "matched", path: `/v1/mirror/same/${run}` });
    expect(byPath.same?.diff).toBeUndefined();
    expect(byPath["same-again"]?.outcome).toBe("matched");
    expect(byPath.status).toMatchObject({
      outcome: "mismatched",
      diff: { status: { primary: 200, shadow: 503 } },
    });
    expect(byPath.body?.outcome).toBe("mismatched");
    expect(Object.keys(byPath.body?.diff ?? {})).toEqual(["body"]);
    expect(byPath.body?.diff?.body?.primary).toMatch(/^[0-9a-f]{64}$/);
    expect(byPath.body?.diff?.body?.shadow).not.toBe(byPath.body?.diff?.body?.primary);
    expect(byPath.header).toMatchObject({
      outcome: "mismatched",
      diff: { headers: { "x-variant": ["a", "b"] } },
    });
    expect(Object.keys(byPath.header?.diff ?? {})).toEqual(["headers"]);

    const seen = await calls(run);
    expect(seen.primary).toHaveLength(5);
    expect(seen.shadow.map((c) => c.path).sort()).toEqual(paths.map((p) => `/shadow${p}`).sort());

    const body = { v: 2, events: mine };
    expect((await deliver([body])).explicitAcks).toHaveLength(1);
    const after = await report("/v1/mirror/");
    expect(delta(after, before)).toEqual({ compared: 5, matched: 2, mismatched: 3, failed: 0 });
    const ids = mine.filter((e) => e.shadow?.outcome === "mismatched").map((e) => e.id);
    expect(after.mismatches.map((m) => m.requestId)).toEqual(expect.arrayContaining(ids));
    const statusId = mine.find((e) => e.shadow?.path === `/v1/mirror/status/${run}`)?.id;
    expect(after.mismatches.find((m) => m.requestId === statusId)).toMatchObject({
      path: `/v1/mirror/status/${run}`,
      diff: { status: { primary: 200, shadow: 503 } },
    });
    expect(after.matchRate).toBeGreaterThan(0);
    expect(after.latency.primaryAvgMs).not.toBeNull();
    expect(after.latency.deltaMs).toBe(
      Math.round(((after.latency.shadowAvgMs ?? 0) - (after.latency.primaryAvgMs ?? 0)) * 10) / 10,
    );
    expect(await usageRows(t.tenantId)).toBe(5);

    // Queues deliver at least once: the same message again changes nothing.
    await deliver([body]);
    const again = await report("/v1/mirror/");
    expect(counts(again)).toEqual(counts(after));
    expect(again.mismatches.filter((m) => ids.includes(m.requestId))).toHaveLength(3);
    expect(await usageRows(t.tenantId)).toBe(5);
  });

  it("sends the copy without the client's credentials, with claims that say shadow: true", async () => {
    const t = await seedTenant();
    const run = uniq();
    const requestIds: string[] = [];
    await captureUsage(
      async () => {
        for (const [i, credential] of [bearer(t.key), { "x-api-key": t.key }].entries()) {
          const res = await gateway(`/v1/mirror/same/${run}/${i}`, {
            headers: { ...credential, cookie: "session=secret-session", "x-gateway-shadow": "1" },
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
          requestIds.push(res.headers.get("x-request-id") ?? "");
        }
      },
      2,
      t.tenantId,
    );
    const seen = await calls(run);
    expect(seen.shadow).toHaveLength(2);
    for (const call of seen.shadow) {
      expect(call.headers.authorization).toBeUndefined();
      expect(call.headers["x-api-key"]).toBeUndefined();
      expect(call.headers.cookie).toBeUndefined();
      expect(call.headers["x-gateway-shadow"]).toBe("1");
      expect(requestIds).toContain(call.headers["x-request-id"]);
      const claims = await verifyGatewayClaims(call.headers["x-gateway-claims"] ?? null, env.CLAIMS_SECRET);
      expect(claims).toMatchObject({ sub: t.tenantId, key_id: t.keyId, shadow: true });
      expect(claims.request_id).toBe(call.headers["x-request-id"]);
    }
    for (const call of seen.primary) {
      expect(call.headers["x-gateway-shadow"]).toBeUndefined();
      const claims = await verifyGatewayClaims(call.headers["x-gateway-claims"] ?? null, env.CLAIMS_SECRET);
      expect(claims.shadow).toBeUndefined();
    }
  });

  it("never makes the client wait for a hanging shadow: the copy times out and counts as failed", async () => {
    const t = await seedTenant();
    const run = uniq();
    const before = await report("/v1/mirror/");
    let elapsed = 0;
    const events = await captureUsage(
      async () => {
        const started = Date.now();
        // The shadow holds this one for 6 s; its timeout on the route is 3 s.
        const res = await gateway(`/v1/mirror/hang/${run}?ms=6000`, { headers: bearer(t.key) });
        expect(await res.json()).toEqual({ mirror: 1 });
        elapsed = Date.now() - started;
      },
      1,
      t.tenantId,
    );
    // Had the client waited for the copy, it would have waited at least the shadow's timeout.
    expect(elapsed).toBeLessThan(3000);
    const event = events.find((e) => e.tenantId === t.tenantId);
    expect(event).toMatchObject({ status: 200, billable: true });
    expect(event?.shadow).toMatchObject({ outcome: "failed", shadowMs: 0 });
    expect((await calls(run)).shadow).toHaveLength(1);
    await deliver([{ v: 2, events: [event] }]);
    expect(delta(await report("/v1/mirror/"), before)).toEqual({
      compared: 1,
      matched: 0,
      mismatched: 0,
      failed: 1,
    });
  });

  it("copies other methods only where the route lists them, with the request body", async () => {
    const t = await seedTenant();
    const run = uniq();
    const events = await captureUsage(
      async () => {
        const send = async (method: string, path: string) => {
          const res = await gateway(path, {
            method,
            headers: { ...bearer(t.key), "content-type": "text/plain" },
            body: method === "GET" ? undefined : `payload-${run}`,
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        };
        await send("PUT", `/v1/mirror/same/${run}/put`);
        await send("POST", `/v1/mirror/same/${run}/post`);
        await send("PUT", `/v1/mirror/get-only/same/${run}/put`);
        await send("GET", `/v1/mirror/get-only/same/${run}/get`);
      },
      4,
      t.tenantId,
    );
    const seen = await calls(run);
    expect(seen.primary).toHaveLength(4);
    expect(seen.shadow.map((c) => `${c.method} ${c.path}`).sort()).toEqual([
      `GET /shadow/v1/mirror/get-only/same/${run}/get`,
      `PUT /shadow/v1/mirror/same/${run}/put`,
    ]);
    const put = seen.shadow.find((c) => c.method === "PUT");
    expect(put?.body).toBe(`payload-${run}`);
    expect(put?.headers["content-type"]).toBe("text/plain");
    // The primary still gets the body with its length (the copy is teed off, not buffered in its way).
    const primaryPut = seen.primary.find((c) => c.path === `/v1/mirror/same/${run}/put`);
    expect(primaryPut?.body).toBe(`payload-${run}`);
    expect(primaryPut?.headers["content-length"]).toBe(String(`payload-${run}`.length));
    const sampled = events.filter((e) => e.tenantId === t.tenantId && e.shadow).map((e) => e.shadow?.path);
    expect(sampled.sort()).toEqual([`/v1/mirror/get-only/same/${run}/get`, `/v1/mirror/same/${run}/put`]);
  });

  it("copies nothing at sample rate 0", async () => {
    const t = await seedTenant();
    const run = uniq();
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 3; i++)
          await (await gateway(`/v1/mirror/unsampled/${run}/${i}`, { headers: bearer(t.key) })).arrayBuffer();
      },
      3,
      t.tenantId,
    );
    expect((await calls(run)).shadow).toHaveLength(0);
    expect(events.filter((e) => e.tenantId === t.tenantId && e.shadow)).toHaveLength(0);
  });

  it("keeps at most 20 mismatch samples per route and hour, and counts every one", async () => {
    const t = await seedTenant();
    // An hour of its own, two days back, so the counts are this test's alone.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000;
    const mismatch = (i: number) =>
      usageEvent({
        id: newId("req"),
        tenantId: t.tenantId,
        keyId: t.keyId,
        route: "/v1/mirror/get-only/",
        billable: false,
        ts: new Date(hour + i * 1000).toISOString(),
        shadow: {
          outcome: "mismatched",
          path: `/v1/mirror/get-only/${i}`,
          primaryMs: 10,
          shadowMs: 30,
          diff: { status: { primary: 200, shadow: 500 } },
        },
      });
    const events = Array.from({ length: 25 }, (_, i) => mismatch(i));
    await deliver([{ v: 2, events: events.slice(0, 15) }]);
    await deliver([{ v: 2, events: events.slice(15) }]);
    const range = `?from=${new Date(hour).toISOString()}&to=${new Date(hour + 3_600_000).toISOString()}&samples=100`;
    const r = await report("/v1/mirror/get-only/", range);
    expect(counts(r)).toEqual({ compared: 25, matched: 0, mismatched: 25, failed: 0 });
    expect(r.matchRate).toBe(0);
    expect(r.latency).toEqual({ primaryAvgMs: 10, shadowAvgMs: 30, deltaMs: 20 });
    expect(r.mismatches).toHaveLength(20);
    // The first ones seen are kept.
    expect(new Set(r.mismatches.map((m) => m.requestId))).toEqual(
      new Set(events.slice(0, 20).map((e) => e.id)),
    );
  });

  it("reports by the prefix encoded or plain; 404 for a route not in the table; 400 for a bad range", async () => {
    const encodedReport = await report("/v1/mirror/get-only/");
    const plain = await expectJson<Report>(
      await admin("GET", "/admin/v1/routes/v1/mirror/get-only/shadow"),
      200,
    );
    expect(plain.route).toBe("/v1/mirror/get-only/");
    expect(counts(plain)).toEqual(counts(encodedReport));
    expect(plain.shadow).toEqual({
      origin: `${env.ORIGIN_URL}/shadow`,
      sampleRate: 1,
      methods: ["GET"],
      compareHeaders: ["content-type"],
      timeoutMs: 3000,
    });
    const noShadow = await report("/v1/reports/");
    expect(noShadow).toMatchObject({ route: "/v1/reports/", shadow: null, compared: 0, matchRate: null });

    const missing = await admin("GET", "/admin/v1/routes/v9/nothing/shadow");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect(await missing.json()).toEqual({
      type: `${PROBLEM_TYPE_BASE}not_found`,
      title: "Not found",
      status: 404,
      detail: "No route /v9/nothing/ in the route table.",
      code: "not_found",
      request_id: missing.headers.get("x-request-id"),
    });

    const now = new Date().toISOString();
    for (const [query, detail] of [
      ["?hours=0", "The request is invalid."],
      ["?hours=abc", "The request is invalid."],
      [`?hours=2&from=${now}&to=${now}`, "Give either `hours` or `from` and `to`, not both."],
      [`?from=${now}`, "`from` and `to` go together."],
      [`?from=${now}&to=${now}`, "`to` must be after `from`, at most 31 days later."],
    ] as const) {
      const res = await admin("GET", `/admin/v1/routes/${encoded("/v1/mirror/")}/shadow${query}`);
      expect(res.status, query).toBe(400);
      const problem = await res.json<Record<string, unknown>>();
      expect({ ...problem, errors: undefined }, query).toEqual({
        type: `${PROBLEM_TYPE_BASE}validation_failed`,
        title: "Validation failed",
        status: 400,
        detail,
        code: "validation_failed",
        request_id: res.headers.get("x-request-id"),
        errors: undefined,
      });
      // The schema's refusals name the field.
      if (detail === "The request is invalid.")
        expect(problem.errors).toEqual([{ path: "hours", message: expect.any(String) }]);
    }
    const anonymous = await gateway(`/admin/v1/routes/${encoded("/v1/mirror/")}/shadow`);
    expect(anonymous.status).toBe(401);
    const doc = await (await gateway("/gateway/openapi.json")).json<{
      paths: Record<string, { get?: unknown }>;
    }>();
    expect(doc.paths["/admin/v1/routes/{prefix}/shadow"]?.get).toBeDefined();
    expect(Object.keys(doc.paths).filter((p) => p.includes(":prefix"))).toEqual([]);
    const wrongMethod = await admin("POST", "/admin/v1/routes/v1/mirror/shadow", {});
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, HEAD");
  });

  it("is pruned by the retention cron: counters with the rollups, mismatch samples with the raw usage", async () => {
    const t = await seedTenant();
    const route = `/retention-${uniq()}/`;
    const now = Date.now();
    const cut = cutoffs(now, DEFAULT_RETENTION);
    const HOUR = 3_600_000;
    const hourBefore = (d: Date) => new Date(Math.floor(d.getTime() / HOUR) * HOUR - HOUR);
    const hourAfter = (d: Date) => new Date(Math.ceil(d.getTime() / HOUR) * HOUR + HOUR);
    const sample = (at: Date) => ({
      requestId: newId("req"),
      route,
      tenantId: t.tenantId,
      method: "GET",
      path: route,
      diff: { status: { primary: 200, shadow: 500 } },
      primaryLatencyMs: 1,
      shadowLatencyMs: 2,
      at,
    });
    const [oldSample, youngSample] = [
      sample(new Date(cut.shadow_mismatches.getTime() - 1000)),
      sample(new Date(now)),
    ];
    await withDb(async (db) => {
      await db.insert(shadowResults).values([
        { route, hour: hourBefore(cut.shadow_results), compared: 1, matched: 1 },
        { route, hour: hourAfter(cut.shadow_results), compared: 1, matched: 1 },
      ]);
      await db.insert(shadowMismatches).values([oldSample, youngSample]);
      await pruneExpired(db, DEFAULT_RETENTION, now);
      const hours = await db
        .select({ hour: shadowResults.hour })
        .from(shadowResults)
        .where(sql`route = ${route}`);
      expect(hours.map((h) => h.hour.getTime())).toEqual([hourAfter(cut.shadow_results).getTime()]);
      const samples = await db
        .select({ id: shadowMismatches.requestId })
        .from(shadowMismatches)
        .where(sql`route = ${route}`);
      expect(samples.map((m) => m.id)).toEqual([youngSample.requestId]);
    });
  });
});
