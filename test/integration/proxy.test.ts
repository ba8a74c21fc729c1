/** Proxy hygiene: credentials stay with us, claims verify, hop-by-hop headers go, bodies stream. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyGatewayClaims } from "../../workers/edge/claims";
import { bearer, gateway, originCalls, seedTenant, uniq } from "../support/gateway";
import { watchUsage } from "../support/metering";

describe("proxy", () => {
  it("never forwards the client's key, and sends verifiable tenant claims and our request id", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const res = await gateway(`/v1/${marker}?q=1`, {
      headers: { ...bearer(t.key), "x-api-key": t.key, "x-gateway-claims": "forged", "x-request-id": "mine" },
    });
    expect(res.status).toBe(200);
    const [call] = await originCalls(marker);
    expect(call?.path).toBe(`/v1/${marker}?q=1`);
    const sent = JSON.stringify(call);
    expect(sent).not.toContain(t.key);
    expect(call?.headers.authorization).toBeUndefined();
    expect(call?.headers["x-api-key"]).toBeUndefined();
    expect(call?.headers["x-request-id"]).toBe(res.headers.get("x-request-id"));
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-z]{26}$/);
    const claims = await verifyGatewayClaims(call?.headers["x-gateway-claims"] ?? null, env.CLAIMS_SECRET);
    expect(claims).toMatchObject({
      sub: t.tenantId,
      tenant: t.slug,
      key_id: t.keyId,
      plan: t.plan.name,
      role: "admin",
      env: "live",
      request_id: res.headers.get("x-request-id"),
    });
    await expect(
      verifyGatewayClaims(call?.headers["x-gateway-claims"] ?? null, "wrong-secret"),
    ).rejects.toThrow();
  });

  it("strips hop-by-hop headers both ways, including those named by Connection", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const res = await gateway(`/v1/${marker}`, {
      headers: {
        ...bearer(t.key),
        connection: "x-secret-hop",
        "x-secret-hop": "1",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        te: "trailers",
        "x-kept": "yes",
      },
    });
    const [call] = await originCalls(marker);
    expect(call?.headers["x-secret-hop"]).toBeUndefined();
    expect(call?.headers["proxy-authorization"]).toBeUndefined();
    expect(call?.headers.te).toBeUndefined();
    expect(call?.headers["x-kept"]).toBe("yes");
    expect(res.headers.get("x-origin")).toBe("test");
    expect(res.headers.get("keep-alive")).toBeNull();
    expect(res.headers.get("proxy-authenticate")).toBeNull();
    expect(res.headers.get("x-response-time")).toMatch(/^\d+ms$/);
    expect(res.headers.get("server-timing")).toMatch(/total;dur=\d+$/);
  });

  it("streams the response body chunk by chunk", async () => {
    const t = await seedTenant();
    await (await gateway(`/v1/warm/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
    // The origin's `/stream` writes 5 chunks 150 ms apart: it finishes at least 600 ms after the
    // request reaches it, so at least 600 ms after this clock starts (before the fetch).
    const started = Date.now();
    const res = await gateway(`/v1/stream/${uniq()}`, { headers: bearer(t.key) });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const arrivals: number[] = [];
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now() - started);
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toBe("chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    const first = arrivals[0] ?? Number.NaN;
    const last = arrivals.at(-1) ?? Number.NaN;
    // The first bytes reached the client before the origin could have finished writing, and the
    // rest kept coming as the origin wrote them (a buffered body arrives all at once, after 600 ms).
    expect(first).toBeLessThan(600);
    expect(last - first).toBeGreaterThanOrEqual(450);
  });

  it("streams a request body to the origin intact", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const payload = JSON.stringify({
      items: Array.from({ length: 2000 }, (_, i) => ({ i, s: "x".repeat(20) })),
    });
    const res = await gateway(`/v1/${marker}`, {
      method: "POST",
      headers: { ...bearer(t.key), "content-type": "application/json" },
      body: payload,
    });
    expect(res.status).toBe(200);
    const [call] = await originCalls(marker);
    expect(call?.method).toBe("POST");
    expect(call?.body).toBe(payload);
    expect(call?.headers["content-length"]).toBe(String(new TextEncoder().encode(payload).length));
  });

  it("refuses a body over the limit with 413 before calling the origin", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const res = await gateway(`/v1/${marker}`, {
      method: "POST",
      headers: { ...bearer(t.key), "content-length": String(11 * 1024 * 1024) },
      body: "x",
    });
    expect(res.status).toBe(413);
    expect((await res.json<{ code: string }>()).code).toBe("payload_too_large");
    expect(await originCalls(marker)).toHaveLength(0);
  });

  it("maps an origin timeout to 504 and an unreachable origin to 502, as problem+json", async () => {
    const t = await seedTenant();
    const slow = await gateway(`/v1/slow/${uniq()}?ms=2000`, { headers: bearer(t.key) });
    expect(slow.status).toBe(504);
    expect(slow.headers.get("content-type")).toBe("application/problem+json");
    expect((await slow.json<{ code: string }>()).code).toBe("origin_timeout");

    const dead = await gateway(`/dead/${uniq()}`, { headers: bearer(t.key) });
    expect(dead.status).toBe(502);
    expect((await dead.json<{ code: string }>()).code).toBe("origin_unavailable");
  });

  it("passes origin errors and redirects through untouched, without following redirects", async () => {
    const t = await seedTenant();
    const notFound = await gateway(`/v1/${uniq()}?status=404`, { headers: bearer(t.key) });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get("content-type")).toContain("application/json");
    const redirect = await gateway(`/v1/redirect/${uniq()}`, { headers: bearer(t.key) });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("http://127.0.0.1:1/elsewhere");
  });

  it("marks deprecated routes with Deprecation and Sunset", async () => {
    const t = await seedTenant();
    const res = await gateway(`/v1/old/${uniq()}`, { headers: bearer(t.key) });
    expect(res.status).toBe(200);
    expect(res.headers.get("deprecation")).toBe(`@${Date.parse("2026-01-01T00:00:00Z") / 1000}`);
    expect(res.headers.get("sunset")).toBe("Fri, 01 Jan 2027 00:00:00 GMT");
  });

  it("refuses paths outside the route table and ambiguous encodings, before auth reaches the origin", async () => {
    const t = await seedTenant();
    const marker = uniq();
    for (const [path, status] of [
      [`/v2/${marker}`, 404],
      [`/v1/..%2f${marker}`, 400],
      // `new Request()` itself resolves `%2e%2e` as `..`: the Worker sees `/<marker>`, outside the table.
      [`/v1/%2e%2e/${marker}`, 404],
      [`/v1//${marker}`, 400],
      [`/v1/a%5c${marker}`, 400],
    ] as const) {
      const res = await gateway(path, { headers: bearer(t.key) });
      expect(res.status, path).toBe(status);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    expect(await originCalls(marker)).toHaveLength(0);
  });

  it("queues one usage event per proxied request, after the response", async () => {
    const t = await seedTenant();
    const usage = watchUsage();
    try {
      const res = await gateway(`/v1/reports-free/${uniq()}`, { headers: bearer(t.key) });
      const body = await res.arrayBuffer();
      const event = await usage.sent(res.headers.get("x-request-id"));
      expect(event).toMatchObject({
        id: res.headers.get("x-request-id"),
        tenantId: t.tenantId,
        keyId: t.keyId,
        env: "live",
        method: "GET",
        route: "/v1/",
        status: 200,
        billable: true,
        units: 1,
        bytesIn: 0,
      });
      // Declared length: metered from Content-Length, the body passing through untouched.
      expect(event.bytesOut).toBe(body.byteLength);
    } finally {
      usage.restore();
    }
  });

  it("meters the bytes of a streamed body of unknown length as they pass", async () => {
    const t = await seedTenant();
    const usage = watchUsage();
    try {
      const res = await gateway(`/v1/stream/${uniq()}`, { headers: bearer(t.key) });
      expect(res.headers.get("content-length")).toBeNull();
      const body = await res.arrayBuffer();
      const event = await usage.sent(res.headers.get("x-request-id"));
      expect(event.bytesOut).toBe(body.byteLength);
      expect(body.byteLength).toBe(40);
    } finally {
      usage.restore();
    }
  });
});
