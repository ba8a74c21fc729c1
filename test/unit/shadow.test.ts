import { describe, expect, it, vi } from "vitest";
import { routePrefix } from "../../workers/api/admin/shadow";
import { CLAIMS_HEADER } from "../../workers/edge/claims";
import { loadRoutes, type RouteShadow } from "../../workers/edge/route-table";
import {
  compareAnswers,
  type Observed,
  SHADOW_MAX_BODY_BYTES,
  sampleShadow,
  shadowRequestHeaders,
} from "../../workers/edge/shadow";
import { foldShadow } from "../../workers/metering/shadow-sink";
import { usageEvent } from "../support/usage-events";

const shadow = (over: Partial<RouteShadow> = {}): RouteShadow => ({
  origin: "https://shadow.example",
  sampleRate: 1,
  methods: ["GET"],
  compareHeaders: ["content-type"],
  timeoutMs: 2000,
  ...over,
});

const answer = (over: Partial<Observed> = {}): Observed => ({
  status: 200,
  headers: { "content-type": "application/json" },
  bodyHash: "a".repeat(64),
  ms: 10,
  ...over,
});

const stream = (text: string) => new Response(text).body as ReadableStream<Uint8Array>;

describe("route table: shadow", () => {
  it("defaults to GET, content-type and a 2 s timeout, and bounds what it takes", () => {
    const [route] = loadRoutes(
      JSON.stringify([{ prefix: "/v1/", shadow: { origin: "https://shadow.example", sampleRate: 0.1 } }]),
    );
    expect(route?.shadow).toEqual(shadow({ sampleRate: 0.1 }));
    for (const bad of [
      { origin: "ftp://x", sampleRate: 1 },
      { origin: "https://x", sampleRate: 1.5 },
      { origin: "https://x", sampleRate: 1, methods: ["BREW"] },
      { origin: "https://x", sampleRate: 1, timeoutMs: 60_000 },
      { origin: "https://x", sampleRate: 1, compareHeaders: ["Content-Type"] },
      { origin: "https://x", sampleRate: 1, extra: true },
    ])
      expect(() => loadRoutes(JSON.stringify([{ prefix: "/v1/", shadow: bad }]))).toThrow(
        /ROUTES is invalid/,
      );
  });
});

describe("sampleShadow", () => {
  const get = { method: "GET", env: "live" as const, body: null, contentLength: undefined };

  it("samples by rate with one random draw, and never a test key or an unlisted method", () => {
    const random = vi.fn(() => 0.5);
    expect(sampleShadow(shadow({ sampleRate: 0.6 }), get, random)).toBeDefined();
    expect(sampleShadow(shadow({ sampleRate: 0.4 }), get, random)).toBeUndefined();
    expect(random).toHaveBeenCalledTimes(2);
    expect(sampleShadow(shadow({ sampleRate: 0 }), get, () => 0)).toBeUndefined();
    expect(sampleShadow(shadow(), { ...get, env: "test" }, random)).toBeUndefined();
    expect(sampleShadow(shadow(), { ...get, method: "POST" }, random)).toBeUndefined();
    expect(random).toHaveBeenCalledTimes(2);
  });

  it("copies a buffered body as is, tees a body of known length within the bound, refuses the rest", async () => {
    const post = shadow({ methods: ["POST"] });
    const buffered = new TextEncoder().encode("abc").buffer as ArrayBuffer;
    const fromBuffer = sampleShadow(post, {
      method: "POST",
      env: "live",
      body: buffered,
      contentLength: "3",
    });
    expect(fromBuffer?.primaryBody).toBe(buffered);
    expect(await fromBuffer?.requestBody).toBe(buffered);

    const teed = sampleShadow(post, {
      method: "POST",
      env: "live",
      body: stream("hello"),
      contentLength: "5",
    });
    const [primary, copy] = await Promise.all([
      new Response(teed?.primaryBody as ReadableStream).text(),
      teed?.requestBody,
    ]);
    expect(primary).toBe("hello");
    expect(new TextDecoder().decode(copy as ArrayBuffer)).toBe("hello");

    const tooLarge = String(SHADOW_MAX_BODY_BYTES + 1);
    expect(
      sampleShadow(post, { method: "POST", env: "live", body: stream("x"), contentLength: tooLarge }),
    ).toBe(undefined);
    expect(
      sampleShadow(post, { method: "POST", env: "live", body: stream("x"), contentLength: undefined }),
    ).toBeUndefined();
  });
});

describe("compareAnswers", () => {
  it("matches equal answers and names each difference", () => {
    expect(compareAnswers(answer(), answer({ ms: 30 }), "/v1/x")).toEqual({
      outcome: "matched",
      path: "/v1/x",
      primaryMs: 10,
      shadowMs: 30,
    });
    const other = answer({ status: 500, bodyHash: "b".repeat(64), headers: { "content-type": null } });
    expect(compareAnswers(answer(), other, "/v1/x")).toEqual({
      outcome: "mismatched",
      path: "/v1/x",
      primaryMs: 10,
      shadowMs: 10,
      diff: {
        status: { primary: 200, shadow: 500 },
        body: { primary: "a".repeat(64), shadow: "b".repeat(64) },
        headers: { "content-type": ["application/json", null] },
      },
    });
  });

  it("does not compare a body that was not hashed, and counts a failed shadow as failed", () => {
    expect(compareAnswers(answer(), answer({ bodyHash: null }), "/v1/x").outcome).toBe("matched");
    expect(compareAnswers(answer({ bodyHash: null }), answer({ bodyHash: "c" }), "/v1/x").outcome).toBe(
      "matched",
    );
    expect(compareAnswers(answer(), null, `/v1/${"x".repeat(600)}`)).toEqual({
      outcome: "failed",
      path: `/v1/${"x".repeat(508)}`,
      primaryMs: 10,
      shadowMs: 0,
    });
  });
});

describe("shadowRequestHeaders", () => {
  it("drops the client's cookies, marks the copy and carries the shadow's claims", () => {
    const headers = shadowRequestHeaders(
      new Headers({
        cookie: "s=1",
        accept: "application/json",
        [CLAIMS_HEADER]: "primary",
        "x-request-id": "req_1",
      }),
      "shadow-claims",
    );
    expect(Object.fromEntries(headers)).toEqual({
      accept: "application/json",
      [CLAIMS_HEADER]: "shadow-claims",
      "x-gateway-shadow": "1",
      "x-request-id": "req_1",
    });
  });
});

describe("foldShadow", () => {
  it("counts per route and hour, sums latencies of the copies that answered, and lists the mismatches", () => {
    const compared = (id: string, ts: string, outcome: "matched" | "mismatched" | "failed", route = "/v1/") =>
      usageEvent({
        id: `req_${id.padEnd(26, "0")}`,
        ts,
        route,
        shadow: {
          outcome,
          path: `${route}p`,
          primaryMs: 10,
          shadowMs: outcome === "failed" ? 0 : 20,
          ...(outcome === "mismatched" ? { diff: { status: { primary: 200, shadow: 500 } } } : {}),
        },
      });
    const { results, mismatches } = foldShadow([
      compared("a", "2026-11-22T10:15:00.000Z", "matched"),
      compared("b", "2026-11-22T10:45:00.000Z", "mismatched"),
      compared("c", "2026-11-22T10:50:00.000Z", "failed"),
      compared("d", "2026-11-22T11:01:00.000Z", "matched"),
      compared("e", "2026-11-22T10:20:00.000Z", "matched", "/v2/"),
      usageEvent({ id: "req_f0000000000000000000000000" }),
    ]);
    expect(results).toEqual([
      {
        route: "/v1/",
        hour: "2026-11-22T10:00:00.000Z",
        compared: 3,
        matched: 1,
        mismatched: 1,
        failed: 1,
        primaryLatencyMs: 20,
        shadowLatencyMs: 40,
      },
      expect.objectContaining({ route: "/v1/", hour: "2026-11-22T11:00:00.000Z", compared: 1, matched: 1 }),
      expect.objectContaining({ route: "/v2/", hour: "2026-11-22T10:00:00.000Z", compared: 1 }),
    ]);
    expect(mismatches).toEqual([
      {
        requestId: "req_b0000000000000000000000000",
        route: "/v1/",
        tenantId: "ten_a",
        method: "GET",
        path: "/v1/p",
        diff: { status: { primary: 200, shadow: 500 } },
        primaryLatencyMs: 10,
        shadowLatencyMs: 20,
        at: "2026-11-22T10:45:00.000Z",
      },
    ]);
  });
});

describe("routePrefix", () => {
  it("takes the prefix decoded or plain, with or without its slashes", () => {
    expect(routePrefix("/v1/reports/")).toBe("/v1/reports/");
    expect(routePrefix("v1/reports")).toBe("/v1/reports/");
    expect(routePrefix("/v1")).toBe("/v1/");
    expect(routePrefix("/")).toBe("/");
  });
});
