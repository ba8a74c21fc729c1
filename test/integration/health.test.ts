import { describe, expect, it } from "vitest";
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
      ]),
    );
  });
});
