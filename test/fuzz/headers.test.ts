/**
 * Fuzz: request headers. The runtime refuses raw CR/LF/NUL before the gateway; everything the
 * Headers object accepts is answered cleanly: hop-by-hop headers, those named by Connection and
 * the client's credentials never reach the origin, spoofed X-Request-ID / X-Gateway-Claims are
 * replaced, injection attempts stay inside their value, oversized values never 5xx, and
 * conflicting or duplicated credentials never authenticate.
 *
 * What the runtime's `Headers` (and so `new Request()`) normalises or refuses before the Worker
 * sees it: CR, LF and NUL in a value, and names with separators, spaces or controls, throw (the
 * generators keep to what `Headers` accepts, `headerSafe`); leading and trailing SP/HTAB of a value
 * are trimmed; names are lower-cased; a value with code points ≥ U+0080 is sent as its UTF-8 bytes
 * (workerd warns "As a quirk to support Unicode…"); repeated names are joined with ", " by `get`.
 * So raw CR/LF/NUL, obs-fold and non-UTF-8 bytes in a value, and bad name bytes, are sent on the
 * wire by test/wire/hostile-wire.ts instead.
 */
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import {
  base62,
  fieldValue,
  forgedClaims,
  hostileValue,
  injection,
  invalidKeyMaterial,
  spoofedRequestId,
  unissuedKey,
} from "../support/fuzz-arbs";
import {
  BASE,
  type Caller,
  check,
  checkEcho,
  checkKeyRefused,
  checkOriginCalls,
  checkResponse,
  FUZZ_PLAN,
  fuzzSeed,
  Ledger,
} from "../support/fuzz-kit";
import { createKey, seedTenant } from "../support/gateway";

const ledger = new Ledger("headers.test.ts");
const keys: { key: string; caller: Caller }[] = [];
let otherTenantKey = "";

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  const test = await createKey(t.tenantId, { env: "test" });
  keys.push(
    { key: t.key, caller: { tenantId: t.tenantId, keyId: t.keyId, env: "live" } },
    { key: test.key, caller: { tenantId: t.tenantId, keyId: test.id, env: "test" } },
  );
  otherTenantKey = (await seedTenant({ plan: FUZZ_PLAN })).key;
});

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the legacy ones): never forwarded. */
const HOP_BY_HOP = ["keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"];

/** Headers a client might spoof to impersonate the gateway, another tenant, or another client. */
const SPOOFABLE = [
  "x-request-id",
  "x-gateway-claims",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "forwarded",
  "x-real-ip",
  "cf-connecting-ip",
  "true-client-ip",
  "host",
  "x-original-url",
  "x-rewrite-url",
  "x-http-method-override",
  "x-tenant-id",
  "x-ratelimit-remaining",
  "idempotent-replayed",
  "cookie",
  "accept",
  "content-type",
  "cache-control",
  "via",
  "origin",
  "referer",
  "user-agent",
];

/** What the gateway itself sets (or the runtime adds) on the origin request, whatever the client said. */
const SET_BY_GATEWAY = new Set(["x-request-id", "x-gateway-claims", "host", "content-length", "cf-worker"]);

const headerName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPOOFABLE) },
  { weight: 2, arbitrary: fc.constantFrom(...HOP_BY_HOP) },
  { weight: 3, arbitrary: base62(1, 8).map((s) => `x-fz-${s.toLowerCase()}`) },
);

/** A Connection header value naming some headers, with the list syntax bent every which way. */
const connectionValue = (names: string[]) =>
  fc
    .tuple(
      fc.subarray(names),
      fc.array(
        fc.constantFrom("close", "keep-alive", "upgrade", "x-fz-listed", "X-FZ-Listed", "authorization"),
      ),
      fc.constantFrom(",", ", ", " ,", ",,", " , "),
    )
    .map(([listed, extra, sep]) => [...listed, ...extra].join(sep))
    .filter((v) => v.trim().length > 0);

const pickKey = fc.nat({ max: 1 });

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

describe("fuzz: headers", () => {
  it("the runtime refuses CR, LF and NUL inside header values and bad names before any gateway code", {
    timeout: 30_000,
  }, () => {
    // Not sent: these never become requests. The gateway's own properties below only generate what
    // `Headers` accepts.
    const bad = fc.constantFrom("\r", "\n", "\r\n", "\0", "\r\nX-Injected: 1", "\nX-Injected: 1");
    fc.assert(
      fc.property(
        fc.constantFrom("authorization", "x-api-key", "idempotency-key", "x-request-id", "x-fz"),
        fieldValue(20),
        bad,
        fieldValue(20),
        (name, before, crlf, after) => {
          const value = `x${before}${crlf}${after}x`;
          let threw = false;
          try {
            new Request(`${BASE}/v1/x`, { headers: [[name, value]] });
          } catch (error) {
            threw = error instanceof TypeError;
          }
          check(threw, `Request accepted ${JSON.stringify(value)} in ${name}`);
        },
      ),
      { numRuns: 300, seed: fuzzSeed(0x68647231) },
    );
    for (const name of ["x fz", "x:fz", "x\r", "(x)", "x/y", "x\0"]) {
      let refused = false;
      try {
        new Headers([[name, "v"]]);
      } catch {
        refused = true;
      }
      check(refused, `Headers accepted the name ${JSON.stringify(name)}`);
    }
  });

  it("strips hop-by-hop, Connection-named and credential headers, replaces spoofed ids and claims", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("hostile headers, valid key");
    const arb = fc
      .record({
        which: pickKey,
        asBearer: fc.boolean(),
        extras: fc.array(fc.tuple(headerName, hostileValue(200)), { maxLength: 8 }),
        tail: base62(1, 8),
      })
      .chain((r) =>
        fc.record({
          r: fc.constant(r),
          connection: fc.option(connectionValue(r.extras.map(([n]) => n)), { nil: undefined }),
        }),
      );
    await fc.assert(
      fc.asyncProperty(arb, async ({ r: { which, asBearer, extras, tail }, connection }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const headers: [string, string][] = [
          asBearer ? ["authorization", `Bearer ${key}`] : ["x-api-key", key],
        ];
        headers.push(...extras);
        if (connection !== undefined) headers.push(["connection", connection]);
        const sent = await run.send({ method: "GET", path: `/v1/${run.marker}/${tail}`, headers });
        const echo = await checkEcho(sent, caller);
        check(sent.status === 200, "refused a request with a valid key", sent);
        if (!echo) return;
        // What the gateway dropped never arrives with the client's value.
        const clientValue = (name: string) => new Headers(headers).get(name);
        const dropped = new Set([...HOP_BY_HOP, "connection"]);
        for (const name of (connection ?? "").split(",")) dropped.add(name.trim().toLowerCase());
        for (const name of dropped) {
          if (!name || SET_BY_GATEWAY.has(name)) continue;
          const sentValue = clientValue(name);
          check(
            sentValue === null || echo.headers[name] !== sentValue,
            `origin received ${name} though it is hop-by-hop or named by Connection`,
            sent,
          );
        }
        check(echo.headers["x-injected"] === undefined, "a header was injected at the origin", sent);
        check(!sent.headers.has("x-injected"), "a header was injected in the response", sent);
        check(
          sent.headers.get("idempotent-replayed") === null,
          "client header leaked into the response",
          sent,
        );
        const spoofedId = clientValue("x-request-id");
        check(sent.headers.get("x-request-id") !== spoofedId, "kept the client's X-Request-ID", sent);
      }),
      { numRuns: 1000, seed: fuzzSeed(0x68647232) },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("answers oversized header values (up to ~100 KB) without a key with a 401, never a 5xx", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("oversized values, no valid key");
    const huge = fc
      .tuple(
        fc.oneof(
          base62(1, 16),
          fieldValue(16).filter((s) => s.trim().length > 0),
        ),
        fc.integer({ min: 8_000, max: 100_000 }),
      )
      .map(([seed, size]) =>
        seed
          .repeat(Math.ceil(size / seed.length))
          .slice(0, size)
          .trim(),
      )
      .filter((v) => v.length > 0);
    const arb = fc.record({
      name: fc.constantFrom(
        "authorization",
        "x-api-key",
        "idempotency-key",
        "x-request-id",
        "cookie",
        "x-fz-big",
        "connection",
      ),
      value: huge,
      bearerPrefix: fc.boolean(),
      method: fc.constantFrom("GET", "POST"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ name, value, bearerPrefix, method }) => {
        const v = name === "authorization" && bearerPrefix ? `Bearer ${value}` : value;
        const sent = await run.send({ method, path: `/v1/${run.marker}/big`, headers: [[name, v]] });
        checkKeyRefused(sent);
      }),
      { numRuns: 200, seed: fuzzSeed(0x68647233) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "an unauthenticated request reached the origin");
  });

  it("forwards large header values (up to the origin's 16 KB header limit) intact with a valid key", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("large values, valid key");
    const arb = fc.record({
      which: pickKey,
      seed: base62(1, 16),
      size: fc.integer({ min: 1_000, max: 12_000 }),
      name: fc.constantFrom("x-fz-big", "cookie", "accept", "x-request-id", "x-gateway-claims"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, seed, size, name }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const value = seed.repeat(Math.ceil(size / seed.length)).slice(0, size);
        const sent = await run.send({
          method: "GET",
          path: `/v1/${run.marker}/large`,
          headers: [
            ["x-api-key", key],
            [name, value],
          ],
        });
        const echo = await checkEcho(sent, caller);
        if (echo && !SET_BY_GATEWAY.has(name))
          check(echo.headers[name] === value, `${name} was altered`, sent);
      }),
      { numRuns: 100, seed: fuzzSeed(0x68647234) },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("never authenticates conflicting or duplicated credentials", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("conflicting or duplicated credentials");
    const arb = fc
      .record({
        which: pickKey,
        other: fc.oneof(
          fc.constant("other key of the tenant"),
          fc.constant("other tenant's key"),
          unissuedKey.map((k) => `unissued:${k}`),
          fc.constant("junk"),
        ),
        shape: fc.constantFrom(
          "bearer+x-api-key",
          "x-api-key+bearer",
          "authorization twice",
          "x-api-key twice",
          "same key twice in authorization",
          "same key twice in x-api-key",
          "bearer + basic",
        ),
      })
      .chain((r) =>
        fc.record({
          r: fc.constant(r),
          junkKey: invalidKeyMaterial([keys[r.which]?.key ?? ""]).map((m) => m.key),
        }),
      );
    await fc.assert(
      fc.asyncProperty(arb, async ({ r: { which, other, shape }, junkKey }) => {
        const a = (keys[which] as (typeof keys)[number]).key;
        const b =
          other === "other key of the tenant"
            ? (keys[1 - which] as (typeof keys)[number]).key
            : other === "other tenant's key"
              ? otherTenantKey
              : other === "junk"
                ? junkKey
                : other.slice("unissued:".length);
        const headers: [string, string][] = {
          "bearer+x-api-key": [
            ["authorization", `Bearer ${a}`],
            ["x-api-key", b],
          ],
          "x-api-key+bearer": [
            ["x-api-key", a],
            ["authorization", `Bearer ${b}`],
          ],
          "authorization twice": [
            ["authorization", `Bearer ${a}`],
            ["authorization", `Bearer ${b}`],
          ],
          "x-api-key twice": [
            ["x-api-key", a],
            ["x-api-key", b],
          ],
          "same key twice in authorization": [
            ["authorization", `Bearer ${a}`],
            ["authorization", `Bearer ${a}`],
          ],
          "same key twice in x-api-key": [
            ["x-api-key", a],
            ["x-api-key", a],
          ],
          "bearer + basic": [
            ["authorization", `Bearer ${a}`],
            ["authorization", `Basic ${base64(`${b}:`)}`],
          ],
        }[shape] as [string, string][];
        const sent = await run.send({
          method: "GET",
          path: `/v1/${run.marker}/${shape.replaceAll(" ", "-")}`,
          headers,
        });
        checkKeyRefused(sent);
      }),
      { numRuns: 500, seed: fuzzSeed(0x68647235) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "conflicting credentials reached the origin");
  });

  it("keeps injection attempts and forged claims inside their own header, even without a key", {
    timeout: 30_000,
  }, async () => {
    const run = ledger.campaign("injection and forged claims, no key");
    const arb = fc.record({
      name: fc.constantFrom(
        "x-api-key",
        "authorization",
        "x-gateway-claims",
        "x-request-id",
        "idempotency-key",
      ),
      value: fc.oneof(injection, forgedClaims, spoofedRequestId),
      claims: forgedClaims,
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ name, value, claims }) => {
        const sent = await run.send({
          method: "POST",
          path: `/v1/${run.marker}/inject`,
          headers: [
            [name, value],
            ["x-gateway-claims", claims],
          ],
        });
        checkKeyRefused(sent);
        check(!sent.headers.has("x-injected"), "a header was injected in the response", sent);
      }),
      { numRuns: 300, seed: fuzzSeed(0x68647236) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "forged claims reached the origin");
  });

  it("answers a client's Expect: 100-continue with the origin's final response, never a 5xx", {
    timeout: 60_000,
  }, async () => {
    // curl and many HTTP clients send `Expect: 100-continue` on their own for larger bodies.
    const run = ledger.campaign("Expect: 100-continue, valid key");
    const arb = fc.record({
      which: pickKey,
      expect: fc.constantFrom("100-continue", "100-Continue", "100-CONTINUE"),
      method: fc.constantFrom("GET", "POST", "PUT"),
      body: fieldValue(64),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, expect, method, body }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const sent = await run.send({
          method,
          path: `/v1/${run.marker}/expect`,
          headers: [
            ["x-api-key", key],
            ["expect", expect],
            ["content-type", "text/plain"],
          ],
          body: method === "GET" ? null : body,
        });
        checkResponse(sent);
        await checkEcho(sent, caller);
      }),
      // A failure here leaves the request's metering waitUntil hanging (30 s): stop at the first.
      { numRuns: 30, seed: fuzzSeed(0x68647237), endOnFailure: true },
    );
    await checkOriginCalls(run.marker);
  });
});
