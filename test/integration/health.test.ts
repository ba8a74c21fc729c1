import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { gateway } from "../support/gateway";

describe("health", () => {
  it("answers live and ready (Postgres reachable) with a request id", async () => {
    for (const path of ["/health", "/health/live"]) {
      const res = await gateway(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    }
    const ready = await gateway("/health/ready");
    const body = await ready.json<{ status: string; checks: { postgres: { status: string } } }>();
    expect(ready.status).toBe(200);
    expect(body.checks.postgres.status).toBe("ok");
  });

  it("answers ready with 503 problem+json when Postgres is unreachable, live still 200", async () => {
    const down = { ...env, PG_WS_PROXY: "127.0.0.1:1/v1" };
    const call = (path: string) =>
      worker.fetch(new Request(`https://gateway.test${path}`), down, createExecutionContext());
    const ready = await call("/health/ready");
    expect(ready.status).toBe(503);
    expect(ready.headers.get("content-type")).toBe("application/problem+json");
    expect((await ready.json<{ code: string }>()).code).toBe("service_unavailable");
    expect((await call("/health/live")).status).toBe(200);
  });

  it("serves the OpenAPI document of the gateway's own API", async () => {
    const res = await gateway("/gateway/openapi.json");
    const doc = await res.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/admin/v1/plans",
        "/admin/v1/tenants",
        "/admin/v1/keys/{id}/rotate",
        "/gateway/v1/keys",
        // Billing: every endpoint issue 10 added is in the document.
        "/webhooks/stripe",
        "/admin/v1/billing/report",
        "/admin/v1/tenants/{id}/billing",
        "/admin/v1/tenants/{id}/invoices",
        "/admin/v1/tenants/{id}/credits",
        "/gateway/v1/billing",
        "/gateway/v1/invoices",
        "/gateway/v1/credits",
        "/gateway/v1/credits/checkout",
        // Issue 11: the one-time portal link.
        "/admin/v1/tenants/{id}/portal-sessions",
      ]),
    );
  });
});
