/** Authentication: every bad credential is a 401 problem+json and the origin is never called. */
import { describe, expect, it } from "vitest";
import { generateKey } from "../../workers/shared/api-keys";
import { kvReads } from "../../workers/shared/key-store";
import { doCalls } from "../../workers/shared/tenant-client";
import { controlledClock } from "../support/clock";
import {
  admin,
  bearer,
  createKey,
  expectJson,
  gateway,
  originCalls,
  seedTenant,
  uniq,
} from "../support/gateway";

const clock = controlledClock();

async function expectUnauthorized(res: Response, detail: RegExp) {
  expect(res.status).toBe(401);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="gateway"/);
  const body = await res.json<Record<string, unknown>>();
  expect(body).toEqual({
    type: "https://gateway.dev/problems/unauthorized",
    title: "Unauthorized",
    status: 401,
    detail: expect.stringMatching(detail),
    code: "unauthorized",
    request_id: res.headers.get("x-request-id"),
  });
}

describe("authentication", () => {
  it("accepts a valid key as Bearer or X-API-Key", async () => {
    const t = await seedTenant();
    const marker = uniq();
    expect((await gateway(`/v1/${marker}/a`, { headers: bearer(t.key) })).status).toBe(200);
    expect((await gateway(`/v1/${marker}/b`, { headers: { "x-api-key": t.key } })).status).toBe(200);
    expect(await originCalls(marker)).toHaveLength(2);
  });

  it("rejects missing, malformed, bad-checksum and unknown keys without calling the origin", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const flipped = t.key.slice(0, -1) + (t.key.endsWith("a") ? "b" : "a");
    const cases: [HeadersInit, RegExp][] = [
      [{}, /required/],
      [bearer("not-a-key"), /malformed/],
      [bearer(flipped), /malformed/],
      [bearer(generateKey("live")), /not valid/],
      [{ "x-api-key": "" }, /required/],
    ];
    for (const [headers, detail] of cases) {
      await expectUnauthorized(await gateway(`/v1/${marker}`, { headers }), detail);
    }
    expect(await originCalls(marker)).toHaveLength(0);
  });

  it("a key seen before vouches for nothing else: a look-alike one character off is still malformed", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const flipped = t.key.slice(0, -1) + (t.key.endsWith("a") ? "b" : "a");
    const longer = `${t.key}a`;
    expect((await gateway(`/v1/${marker}/a`, { headers: bearer(t.key) })).status).toBe(200);
    await expectUnauthorized(await gateway(`/v1/${marker}/b`, { headers: bearer(flipped) }), /malformed/);
    await expectUnauthorized(await gateway(`/v1/${marker}/c`, { headers: bearer(longer) }), /malformed/);
    expect((await gateway(`/v1/${marker}/d`, { headers: bearer(t.key) })).status).toBe(200);
    expect((await originCalls(marker)).map((c) => c.path)).toEqual([`/v1/${marker}/a`, `/v1/${marker}/d`]);
  });

  it("challenges per RFC 6750: no error code without credentials, invalid_token for a bad key", async () => {
    const missing = await gateway("/v1/challenge");
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="gateway"');
    const unknown = await gateway("/v1/challenge", { headers: bearer(generateKey("live")) });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get("www-authenticate")).toBe('Bearer realm="gateway", error="invalid_token"');
  });

  it("answers a malformed Authorization with 400 invalid_request (RFC 6750 §3.1), never calling the origin", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const cases: [HeadersInit, string][] = [
      [
        { authorization: "Basic dXNlcjpwYXNz" },
        "The Authorization header must use the Bearer scheme: `Bearer <key>`.",
      ],
      [
        { authorization: `Token ${t.key}` },
        "The Authorization header must use the Bearer scheme: `Bearer <key>`.",
      ],
      [{ authorization: "Bearer" }, "The Authorization header must use the Bearer scheme: `Bearer <key>`."],
      [
        { authorization: `Bearer ${t.key} extra` },
        "The Authorization header must use the Bearer scheme: `Bearer <key>`.",
      ],
      [
        { authorization: `Bearer ${t.key}`, "x-api-key": generateKey("live") },
        "Authorization and X-API-Key carry different keys.",
      ],
    ];
    for (const [headers, detail] of cases) {
      for (const path of [`/v1/${marker}`, "/gateway/v1/keys"]) {
        const res = await gateway(path, { headers });
        expect(res.status).toBe(400);
        expect(res.headers.get("content-type")).toBe("application/problem+json");
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="gateway", error="invalid_request"');
        expect(await res.json()).toEqual({
          type: "https://gateway.dev/problems/invalid_request",
          title: "Invalid request",
          status: 400,
          detail,
          code: "invalid_request",
          request_id: res.headers.get("x-request-id"),
        });
      }
    }
    expect(await originCalls(marker)).toHaveLength(0);
  });

  it("rejects an expired key from the instant it expires, at the edge, before any tenant-object call", async () => {
    const t = await seedTenant();
    const expiresAt = clock.set(Date.now()) + 60_000;
    const k = await createKey(t.tenantId, { expiresAt: new Date(expiresAt).toISOString() });
    const marker = uniq();
    clock.set(expiresAt - 1);
    expect((await gateway(`/v1/${marker}/before`, { headers: bearer(k.key) })).status).toBe(200);
    clock.set(expiresAt);
    const calls = doCalls.count;
    await expectUnauthorized(await gateway(`/v1/${marker}/after`, { headers: bearer(k.key) }), /expired/);
    // authenticate refused it from the key record (now warm in the isolate): the object was not asked.
    expect(doCalls.count).toBe(calls);
    expect((await originCalls(marker)).map((c) => c.path)).toEqual([`/v1/${marker}/before`]);
  });

  it("rejects a revoked key on the very next request", async () => {
    const t = await seedTenant();
    const marker = uniq();
    expect((await gateway(`/v1/${marker}/before`, { headers: bearer(t.key) })).status).toBe(200);
    await expectJson(await admin("DELETE", `/admin/v1/keys/${t.keyId}`), 200);
    await expectUnauthorized(await gateway(`/v1/${marker}/after`, { headers: bearer(t.key) }), /revoked/);
    expect((await originCalls(marker)).map((c) => c.path)).toEqual([`/v1/${marker}/before`]);
  });

  it("costs 0 KV reads once a key is warm in the isolate", async () => {
    const t = await seedTenant();
    // The control: the first request with the key reads it (and its tenant) from KV.
    const cold = kvReads.count;
    expect((await gateway("/v1/warm-up", { headers: bearer(t.key) })).status).toBe(200);
    expect(kvReads.count - cold).toBeGreaterThanOrEqual(1);
    const before = kvReads.count;
    for (let i = 0; i < 5; i++)
      expect((await gateway("/v1/warm", { headers: bearer(t.key) })).status).toBe(200);
    expect(kvReads.count - before).toBe(0);
  });

  it("caches misses too, so a flood of unknown keys costs one KV read each, once", async () => {
    const unknown = generateKey("live");
    const cold = kvReads.count;
    expect((await gateway("/v1/x", { headers: bearer(unknown) })).status).toBe(401);
    expect(kvReads.count - cold).toBe(1);
    const before = kvReads.count;
    for (let i = 0; i < 5; i++)
      expect((await gateway("/v1/x", { headers: bearer(unknown) })).status).toBe(401);
    expect(kvReads.count - before).toBe(0);
  });
});
