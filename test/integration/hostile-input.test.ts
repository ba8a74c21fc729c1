/**
 * Hostile input stops at the gateway: a body on GET/HEAD, `;` path parameters (`/v1/..;/admin`),
 * header names outside the token set and control characters in header values are refused with 400
 * before authentication and admission — the origin is not called and no token is spent.
 *
 * A `Request` cannot carry a body on GET/HEAD (the constructor throws), so these tests send what
 * announces one on the wire: `Content-Length` or `Transfer-Encoding` (RFC 9112 §6.3).
 */
import { describe, expect, it } from "vitest";
import { hostileShape } from "../../workers/edge/request-shape";
import { bearer, gateway, originCalls, seedTenant, uniq } from "../support/gateway";

async function expectBadRequest(res: Response, detail: string): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(await res.json()).toEqual({
    type: "https://gateway.dev/problems/bad_request",
    title: "Bad request",
    status: 400,
    detail,
    code: "bad_request",
    request_id: res.headers.get("x-request-id"),
  });
}

/** A plan whose bucket holds one token that never refills within the test: a spent token shows. */
const ONE_TOKEN = { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 3600 };

describe("hostile input", () => {
  it("a GET or HEAD announcing a body is refused with 400 before admission: no origin call, no token", async () => {
    const t = await seedTenant({ plan: ONE_TOKEN });
    const marker = uniq();
    for (const [method, headers] of [
      ["GET", { "content-length": "5" }],
      ["GET", { "transfer-encoding": "chunked" }],
      ["HEAD", { "content-length": "12" }],
    ] as const) {
      const res = await gateway(`/v1/${marker}`, { method, headers: { ...bearer(t.key), ...headers } });
      if (method === "HEAD") {
        expect(res.status).toBe(400);
        expect(res.headers.get("content-type")).toBe("application/problem+json");
      } else {
        await expectBadRequest(res, `A ${method} request cannot carry a body.`);
      }
    }
    expect(await originCalls(marker)).toEqual([]);
    // The one token is still there: the refused requests never reached admission.
    const ok = await gateway(`/v1/${marker}`, { headers: { ...bearer(t.key), "content-length": "0" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-burstremaining")).toBe("0");
  });

  it("refuses `;` path parameters, raw or encoded, that a servlet-style origin would strip", async () => {
    const t = await seedTenant();
    const marker = uniq();
    for (const path of [
      `/v1/..;/admin/v1/plans?m=${marker}`,
      `/v1/${marker}/..;/..;/gateway/v1/keys`,
      `/v1/${marker};jsessionid=1`,
      `/v1/${marker}/.;/x`,
      `/v1/${marker}/%3b/x`,
    ]) {
      await expectBadRequest(
        await gateway(path, { headers: bearer(t.key) }),
        "The request path contains encoded separators, path parameters (;) or empty segments.",
      );
    }
    expect(await originCalls(marker)).toEqual([]);
    // A `;` in the query is data, not a path parameter.
    expect((await gateway(`/v1/${marker}?a=1;b=2`, { headers: bearer(t.key) })).status).toBe(200);
  });

  it("refuses header names outside the token set and control characters in values, before the key is checked", async () => {
    const marker = uniq();
    await expectBadRequest(
      await gateway(`/v1/${marker}`, { headers: [["x-caf\u00e9", "1"]] }),
      "A header name contains characters outside the HTTP token set.",
    );
    for (const value of ["a\u0001b", "a\u000bb", "a\u001fb", "a\u007fb", "x\u000c"]) {
      await expectBadRequest(
        await gateway(`/v1/${marker}`, { headers: { "x-note": value } }),
        "The x-note header contains a control character.",
      );
    }
    expect(await originCalls(marker)).toEqual([]);
  });

  it("lets HTAB, obs-text and a zero Content-Length on GET through", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const res = await gateway(`/v1/${marker}`, {
      headers: { ...bearer(t.key), "x-note": "a\tb \u00e9", "content-length": "0" },
    });
    expect(res.status).toBe(200);
    const [call] = await originCalls(marker);
    // (The test origin decodes header bytes as Latin-1: the é arrives as its two UTF-8 bytes.)
    expect(call?.headers["x-note"]).toMatch(/^a\tb \S+$/);
  });
});

describe("hostileShape (pure)", () => {
  it("flags a GET with a body stream, and nothing on a POST with one", () => {
    expect(hostileShape("GET", new Headers(), true)).toBe("A GET request cannot carry a body.");
    expect(hostileShape("GET", new Headers({ "content-length": "0" }), true)).toBeNull();
    expect(hostileShape("HEAD", new Headers(), false)).toBeNull();
    expect(hostileShape("POST", new Headers({ "content-length": "5" }), true)).toBeNull();
    expect(hostileShape("DELETE", new Headers({ "transfer-encoding": "chunked" }), true)).toBeNull();
  });
});
