/** Wrong method on the gateway's own paths: 405 `method_not_allowed` with `Allow`, never the proxy's 404. */
import { describe, expect, it } from "vitest";
import { admin, bearer, gateway, seedTenant } from "../support/gateway";

/** Asserts the whole problem+json body of a 405. */
async function expect405(res: Response, detail: string): Promise<void> {
  expect({ status: res.status, contentType: res.headers.get("content-type") }).toEqual({
    status: 405,
    contentType: "application/problem+json",
  });
  expect(await res.json()).toEqual({
    type: "https://gateway.dev/problems/method_not_allowed",
    title: "Method not allowed",
    status: 405,
    detail,
    code: "method_not_allowed",
    request_id: res.headers.get("x-request-id"),
  });
}

describe("gateway paths", () => {
  it("answers a wrong method with 405 and Allow, after authentication", async () => {
    const t = await seedTenant();
    const tenantKey = bearer(t.key);
    const cases: [string, string, Record<string, string> | "admin", string][] = [
      ["PUT", "/admin/v1/plans", "admin", "GET, HEAD, POST"],
      ["DELETE", `/admin/v1/tenants/${t.tenantId}`, "admin", "GET, HEAD, PATCH"],
      ["GET", `/admin/v1/keys/${t.keyId}/rotate`, "admin", "POST"],
      ["PUT", `/admin/v1/tenants/${t.tenantId}/usage`, "admin", "GET, HEAD"],
      ["PATCH", "/gateway/v1/keys", tenantKey, "GET, HEAD, POST"],
      ["GET", "/gateway/v1/keys/key_x", tenantKey, "DELETE"],
      ["POST", "/gateway/openapi.json", {}, "GET, HEAD"],
      ["DELETE", "/health", {}, "GET, HEAD"],
      ["POST", "/health/ready", {}, "GET, HEAD"],
    ];
    for (const [method, path, headers, allow] of cases) {
      const res = headers === "admin" ? await admin(method, path) : await gateway(path, { method, headers });
      expect({ path, allow: res.headers.get("allow") }).toEqual({ path, allow });
      await expect405(res, `${method} is not allowed here. Allowed: ${allow}.`);
    }
    // Authentication still comes first, and unknown paths are still the proxy's.
    expect((await admin("PUT", "/admin/v1/plans", {}, "wrong")).status).toBe(401);
    expect((await gateway("/gateway/v1/keys", { method: "PATCH" })).status).toBe(401);
    expect((await gateway("/gateway/v1/nope", { headers: bearer(t.key) })).status).toBe(404);
  });
});
