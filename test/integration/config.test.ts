/**
 * Config checked at the door: a bad var answers every request — proxy, admin API, tenant API,
 * health — 503 `misconfigured` naming the var (logged once), never a silently disabled limit.
 *
 * The pool runs one set of bindings per file, so a misconfigured Worker is the real default export
 * of workers/index.ts called with a copy of the test env that has one var changed.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../../workers/config";
import worker from "../../workers/index";
import { reportUsage } from "../../workers/metering/stripe-reporter";
import { BASE, bearer, originCalls, seedTenant, type TenantFixture, uniq } from "../support/gateway";

let tenant: TenantFixture;
beforeAll(async () => {
  tenant = await seedTenant();
});
afterEach(() => vi.restoreAllMocks());

async function call(
  vars: Record<string, unknown>,
  path: string,
  init: RequestInit = {},
): Promise<{ res: Response; body: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, init),
    { ...env, ...vars } as never,
    ctx as never,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, body };
}

function misconfigured(res: Response, body: string, detail: string): void {
  expect(res.status).toBe(503);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const id = res.headers.get("x-request-id");
  expect(JSON.parse(body)).toEqual({
    type: "https://gateway.dev/problems/misconfigured",
    title: "Gateway misconfigured",
    status: 503,
    detail,
    code: "misconfigured",
    request_id: id,
  });
}

const BAD_BODY_LIMIT =
  "The gateway is misconfigured: MAX_BODY_BYTES: must be a whole number of bytes from 1 to 1073741824 (e.g. 10485760 for 10 MiB).";

describe("config: a bad var is refused at the door", () => {
  it("MAX_BODY_BYTES=10MB: the proxy answers 503 misconfigured, and the origin is not called", async () => {
    const marker = `cfg-${uniq()}`;
    const { res, body } = await call({ MAX_BODY_BYTES: "10MB" }, `/v1/${marker}`, {
      method: "POST",
      headers: bearer(tenant.key),
      body: "x".repeat(100),
    });
    misconfigured(res, body, BAD_BODY_LIMIT);
    expect(await originCalls(marker)).toEqual([]);
  });

  it("a bad ORIGIN_TIMEOUT_MS: the admin API, the tenant API and health answer 503 naming it", async () => {
    const detail =
      "The gateway is misconfigured: ORIGIN_TIMEOUT_MS: must be a whole number of milliseconds from 1 to 900000 (e.g. 30000).";
    const bad = { ORIGIN_TIMEOUT_MS: "30s" };
    const adminCall = await call(bad, "/admin/v1/plans", { headers: bearer(env.ADMIN_TOKEN) });
    misconfigured(adminCall.res, adminCall.body, detail);
    const tenantCall = await call(bad, "/gateway/v1/usage", { headers: bearer(tenant.key) });
    misconfigured(tenantCall.res, tenantCall.body, detail);
    const health = await call(bad, "/health/live");
    misconfigured(health.res, health.body, detail);
  });

  it("names every bad var, and the route-table entry at fault", async () => {
    const { res, body } = await call(
      {
        ROUTES: JSON.stringify([{ prefix: "v1", cost: 1 }]),
        ORIGIN_URL: "api.example.com",
        LOG_SAMPLE_RATE: "half",
      },
      "/v1/x",
      { headers: bearer(tenant.key) },
    );
    misconfigured(
      res,
      body,
      "The gateway is misconfigured: ORIGIN_URL: must be an absolute http(s) URL (the origin for live keys); " +
        "ROUTES[0].prefix: must start and end with / and hold plain segments; " +
        "LOG_SAMPLE_RATE: must be a number from 0 to 1 (e.g. 0.1).",
    );
  });

  it("ROUTES that is not JSON is a 503 naming ROUTES, not a 500", async () => {
    const { res, body } = await call({ ROUTES: "[{prefix: '/v1/'}]" }, "/v1/x", {
      headers: bearer(tenant.key),
    });
    misconfigured(res, body, "The gateway is misconfigured: ROUTES: is not valid JSON.");
  });

  it("logs a bad config once per isolate, not once per request", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => lines.push(line));
    vi.spyOn(console, "log").mockImplementation(() => {});
    const bad = { MAX_BODY_BYTES: "-1", LOG_LEVEL: "info" };
    for (let i = 0; i < 3; i++) {
      const { res } = await call({ ...bad }, "/v1/x", { headers: bearer(tenant.key) });
      expect(res.status).toBe(503);
    }
    const misconfig = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "misconfigured");
    expect(misconfig).toEqual([
      { level: "error", msg: "misconfigured", code: "misconfigured", error: BAD_BODY_LIMIT },
    ]);
  });

  it("the good config keeps working next to a bad one (the cache is per set of values)", async () => {
    expect(
      (await call({ MAX_BODY_BYTES: "10MB" }, "/v1/x", { headers: bearer(tenant.key) })).res.status,
    ).toBe(503);
    const good = await call({}, "/v1/x", { headers: bearer(tenant.key) });
    expect(good.res.status).toBe(200);
    const smallLimit = await call({ MAX_BODY_BYTES: "10" }, "/v1/x", {
      method: "POST",
      headers: bearer(tenant.key),
      body: "x".repeat(11),
    });
    expect(smallLimit.res.status).toBe(413);
  });
});

describe("config outside HTTP", () => {
  it("the cron reporter refuses a bad STRIPE_METER_EVENT_NAME instead of creating a meter under it", async () => {
    await expect(
      reportUsage({ ...env, STRIPE_METER_EVENT_NAME: "gateway units" } as typeof env),
    ).rejects.toThrow(
      "The gateway is misconfigured: STRIPE_METER_EVENT_NAME: must be 1-100 letters, digits or _ . : -.",
    );
  });
});

describe("config schema (shared by the Worker, npm run check:config and npm start)", () => {
  it("applies the defaults when optional vars are unset", () => {
    const result = parseConfig({
      ORIGIN_URL: "https://api.example.com",
      SANDBOX_ORIGIN_URL: "https://sandbox.example.com",
      ROUTES: '[{ "prefix": "/v1/" }]',
      CLAIMS_SECRET: "0123456789abcdef",
      DATABASE_URL: "postgres://u@h/db",
    });
    expect(result).toEqual({
      ok: true,
      config: {
        originUrl: "https://api.example.com",
        sandboxOriginUrl: "https://sandbox.example.com",
        originTimeoutMs: 30_000,
        maxBodyBytes: 10 * 1024 * 1024,
        routes: [{ prefix: "/v1/", cost: 1, billable: true }],
        leaseMs: 1000,
        stripeMeterEventName: "gateway_units",
        stripeReportLatenessS: 600,
        stripeWebhookSecret: null,
        billingGracePeriodS: 604_800,
        logLevel: "info",
        logSampleRate: 1,
        mail: null,
        portalSignupPlan: null,
        portalOpenapiUrl: null,
        webhookAllowLocalhost: false,
        shedding: true,
        retention: {
          usageEventsDays: 90,
          rollupsMonths: 25,
          requestAuditDays: 365,
          actionAuditDays: 2557,
          webhookDays: 30,
        },
      },
    });
  });

  it("takes PORTAL_OPENAPI_URL as an https URL or a path on the live origin, and refuses anything else", () => {
    const base = {
      ORIGIN_URL: "https://api.example.com/base/",
      SANDBOX_ORIGIN_URL: "https://sandbox.example.com",
      ROUTES: "[]",
      CLAIMS_SECRET: "0123456789abcdef",
      DATABASE_URL: "postgres://u@h/db",
    };
    const url = (value: string) => {
      const result = parseConfig({ ...base, PORTAL_OPENAPI_URL: value });
      return result.ok ? result.config.portalOpenapiUrl : result.message;
    };
    expect(url("/openapi.json")).toBe("https://api.example.com/openapi.json");
    expect(url("https://docs.example.com/v1/openapi.json?x=1")).toBe(
      "https://docs.example.com/v1/openapi.json?x=1",
    );
    const refused =
      "The gateway is misconfigured: PORTAL_OPENAPI_URL: must be an https URL or a path on the origin starting with / (e.g. /openapi.json).";
    for (const bad of [
      "http://docs.example.com/openapi.json",
      "//evil.example/x",
      "openapi.json",
      "/a b",
      "file:///etc/passwd",
    ]) {
      expect(url(bad), bad).toBe(refused);
    }
  });

  it("refuses partial numbers, zero timeouts, unknown levels and switches, and missing secrets", () => {
    const result = parseConfig({
      ORIGIN_URL: "https://api.example.com",
      SANDBOX_ORIGIN_URL: "https://sandbox.example.com",
      ROUTES: "[]",
      ORIGIN_TIMEOUT_MS: "0",
      MAX_BODY_BYTES: "1e6",
      LOG_LEVEL: "verbose",
      SHEDDING: "yes",
    });
    expect(result).toEqual({
      ok: false,
      message:
        "The gateway is misconfigured: ORIGIN_TIMEOUT_MS: must be a whole number of milliseconds from 1 to 900000 (e.g. 30000); " +
        "MAX_BODY_BYTES: must be a whole number of bytes from 1 to 1073741824 (e.g. 10485760 for 10 MiB); " +
        "SHEDDING: must be on or off (fair shedding when a route's origin degrades); " +
        "LOG_LEVEL: must be one of debug, info, warn, error; " +
        "CLAIMS_SECRET: is required (the HMAC key of the origin claims); " +
        "DATABASE_URL: is required (the Postgres connection string).",
    });
  });

  it("takes LEASE_MS from 10 to 1000 ms (a lease never outlives 1 s), and refuses anything else", () => {
    const base = {
      ORIGIN_URL: "https://api.example.com",
      SANDBOX_ORIGIN_URL: "https://sandbox.example.com",
      ROUTES: "[]",
      CLAIMS_SECRET: "0123456789abcdef",
      DATABASE_URL: "postgres://u@h/db",
    };
    const lease = (value: string) => {
      const result = parseConfig({ ...base, LEASE_MS: value });
      return result.ok ? result.config.leaseMs : result.message;
    };
    expect(lease("250")).toBe(250);
    expect(lease("1000")).toBe(1000);
    const refused =
      "The gateway is misconfigured: LEASE_MS: must be a whole number of milliseconds from 10 to 1000 (e.g. 1000).";
    for (const bad of ["1001", "5", "1s", ""]) expect(lease(bad), bad).toBe(refused);
  });

  it("STRIPE_WEBHOOK_SECRET is optional; when set it must be a whsec_ secret", () => {
    const vars = {
      ORIGIN_URL: "https://api.example.com",
      SANDBOX_ORIGIN_URL: "https://sandbox.example.com",
      ROUTES: "[]",
      CLAIMS_SECRET: "0123456789abcdef",
      DATABASE_URL: "postgres://u@h/db",
    };
    const unset = parseConfig(vars);
    expect(unset.ok && unset.config.stripeWebhookSecret).toBeNull();
    const set = parseConfig({ ...vars, STRIPE_WEBHOOK_SECRET: "whsec_abc123" });
    expect(set.ok && set.config.stripeWebhookSecret).toBe("whsec_abc123");
    for (const bad of ["sk_test_abc", "whsec_", "", " whsec_abc"]) {
      expect(parseConfig({ ...vars, STRIPE_WEBHOOK_SECRET: bad })).toEqual({
        ok: false,
        message:
          "The gateway is misconfigured: STRIPE_WEBHOOK_SECRET: must be the endpoint's signing secret, starting with whsec_.",
      });
    }
  });
});
