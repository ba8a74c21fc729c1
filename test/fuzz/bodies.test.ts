/**
 * Fuzz: request bodies. Junk on the admin API (invalid JSON, wrong types, wrong media types, deep
 * nesting, prototype keys) is a 4xx problem, never a 5xx, and pollutes nothing; declared and actual
 * bodies over the limits are 413 before the origin; bodies under the limit reach it intact.
 *
 * What `new Request()` normalises or refuses before the Worker sees a body: a body on GET or HEAD
 * throws (so those are sent on the wire, test/wire/hostile-wire.ts); a string body is a USVString
 * (Fetch), encoded as UTF-8, so a lone surrogate in raw text arrives as U+FFFD (the NUL property
 * sends it JSON-escaped, `"\ud800"`, which does reach the JSON parser); a ReadableStream body
 * carries no Content-Length (chunked).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import { controlledClock } from "../support/clock";
import { base62, methodWithBody } from "../support/fuzz-arbs";
import {
  type Caller,
  type Campaign,
  check,
  checkEcho,
  checkOriginCalls,
  checkRefused,
  checkResponse,
  FUZZ_PLAN,
  FuzzFailure,
  fuzzSeed,
  Ledger,
  type Sent,
} from "../support/fuzz-kit";
import { createKey, createPlan, seedTenant, uniq } from "../support/gateway";

const ledger = new Ledger("bodies.test.ts");
const ADMIN: [string, string] = ["authorization", `Bearer ${env.ADMIN_TOKEN}`];
/** workers/app.ts: admin and tenant API bodies are limited to 64 KiB. */
const API_BODY_LIMIT = 64 * 1024;
/** README: `MAX_BODY_BYTES`, default 10 MiB. */
const MAX_BODY = Number((env as { MAX_BODY_BYTES?: string }).MAX_BODY_BYTES ?? 10 * 1024 * 1024);

let caller: Caller;
let apiKey = "";
/** Victims of the admin fuzz: a plan, a tenant on it, and a key of that tenant. */
const ids = { plan: "", tenant: "", key: "" };

/**
 * Every property here calls the tenant API with the same key, so they share its management bucket
 * (300 tokens, 5 back a second; a timeseries costs 10). Before each tenant-API call the controlled
 * clock moves 2 s past the previous call (10 tokens back), across the whole file: no property's
 * answers depend on which ran before it (`--sequence.shuffle`) or on how fast the machine is. The
 * instant only ever moves forward (the tenant object keeps its bucket's last update).
 */
const clock = controlledClock();
let tenantApiAt = Date.now();
function tenantApiTurn(): void {
  tenantApiAt = Math.max(tenantApiAt, Date.now()) + 2_000;
  clock.set(tenantApiAt);
}

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  apiKey = t.key;
  caller = { tenantId: t.tenantId, keyId: t.keyId, env: "live" };
  const plan = await createPlan();
  const victim = await seedTenant();
  const key = await createKey(victim.tenantId);
  Object.assign(ids, { plan: plan.id, tenant: victim.tenantId, key: key.id });
  FORGED.tenantId = t.tenantId;
});

/** What a client forges for a field only the server sets (tenantId is filled in with a real other tenant). */
const FORGED: Record<string, string> = {
  id: "key_forged0000000000000000",
  tenantId: "",
  keyHash: "0".repeat(64),
  rotatedFromId: "key_forged0000000000000000",
  createdAt: "2000-01-01T00:00:00.000Z",
};

/** Every field name the admin API knows, plus the ones an attacker tries. */
const FIELDS = [
  "name",
  "burstCapacity",
  "refillTokens",
  "refillPeriodSeconds",
  "dailyQuota",
  "monthlyQuota",
  "entitlements",
  "pricing",
  "applyPricing",
  "slug",
  "planId",
  "overrides",
  "status",
  "env",
  "role",
  "ipAllowlist",
  "expiresAt",
  "rateLimit",
  "gracePeriodSeconds",
  "id",
  "tenantId",
  "keyHash",
  "__proto__",
  "constructor",
  "prototype",
];

const oddValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(
    1e308,
    -1,
    0,
    2 ** 53,
    -(2 ** 53),
    1.5,
    "NaN",
    "1e999",
    "",
    " ",
    "live",
    "test",
    "admin",
    "suspended",
    "0.0.0.0/0",
    "::/0",
    "999.1.1.1/33",
    "2999-01-01T00:00:00Z",
    "not-a-date",
    { polluted: true },
    [[[[[]]]]],
  ),
);

/** Objects with the API's own field names and values of every type. */
const wrongTypes = fc
  .dictionary(fc.constantFrom(...FIELDS), oddValue, { maxKeys: 8 })
  .map((o) => JSON.stringify(o));

const deepNesting = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom(["[", "]"], ['{"a":', "}"]))
  .map(([n, [open, close]]) => `${open.repeat(n)}1${close.repeat(n)}`);

/**
 * A body an endpoint may accept (`{}`, a name) with fields only the server may set glued on: a
 * forged id, another tenant's id, a key hash. If it is accepted, those must have been ignored.
 */
const privileged = fc
  .record({
    base: fc.constantFrom({}, { name: "fuzz-privileged" }),
    forged: fc.subarray(["id", "tenantId", "keyHash", "rotatedFromId", "createdAt"], { minLength: 1 }),
  })
  .map(({ base, forged }) =>
    JSON.stringify({ ...base, ...Object.fromEntries(forged.map((f) => [f, FORGED[f]])) }),
  );

const jsonBody = fc.oneof(
  { weight: 3, arbitrary: wrongTypes },
  { weight: 2, arbitrary: privileged },
  { weight: 2, arbitrary: fc.json() },
  { weight: 2, arbitrary: fc.anything().map((v) => safeStringify(v)) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.json().map((s) => s.slice(0, Math.max(0, s.length - 1))) },
  { weight: 1, arbitrary: deepNesting },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"__proto__":{"polluted":true}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"name":"x","name":"y"}',
      "\ufeff{}",
      "{}\u0000",
      "null",
      "[]",
      '"string"',
      "1e309",
      "{}",
    ),
  },
);

function safeStringify(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

const bytesBody = fc.uint8Array({ maxLength: 300 });

const contentType = fc.option(
  fc.constantFrom(
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/problem+json",
    "application/merge-patch+json",
    "application/json; charset=utf-16",
    "application/jsonx",
    "text/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=----x",
    "application/octet-stream",
    "",
  ),
  { nil: undefined, freq: 4 },
);

const bogusId = fc.oneof(
  base62(1, 30),
  base62(65, 200),
  fc.constantFrom(
    "%2e%2e",
    "..%2fplans",
    "%00",
    "'; drop table tenants;--",
    "plan_' OR '1'='1",
    "%F0%9F%98%80",
    "null",
    "undefined",
    "__proto__",
  ),
);

/** An admin endpoint: `{id}` is the victim's id of that kind unless a bogus one was drawn. */
interface Endpoint {
  method: string;
  template: string;
  kind?: keyof typeof ids;
  id?: string;
  /** The tenant API (`/gateway/v1`) takes the tenant's API key; the rest the admin token. */
  tenantApi?: boolean;
}

function endpointPath(e: Endpoint): string {
  return e.template.replace("{id}", e.id ?? (e.kind ? ids[e.kind] : ""));
}

const withId = (method: string, template: string, kind: keyof typeof ids) =>
  fc.option(bogusId, { nil: undefined, freq: 2 }).map((id): Endpoint => ({ method, template, kind, id }));

/** Admin endpoints with a body (and a few without a route), with real or bogus ids. */
const endpoint: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.constant({ method: "POST", template: "/admin/v1/plans" }),
  fc.constant({ method: "POST", template: "/admin/v1/tenants" }),
  withId("POST", "/admin/v1/tenants/{id}/keys", "tenant"),
  withId("POST", "/admin/v1/keys/{id}/rotate", "key"),
  withId("PATCH", "/admin/v1/plans/{id}", "plan"),
  withId("PATCH", "/admin/v1/tenants/{id}", "tenant"),
  fc.constantFrom(
    { method: "PUT", template: "/admin/v1/plans" },
    { method: "DELETE", template: "/admin/v1/tenants" },
    { method: "PATCH", template: "/admin/v1/keys/x" },
  ),
  fc.constant({ method: "POST", template: "/gateway/v1/keys", tenantApi: true }),
  bogusId.map(
    (id): Endpoint => ({ method: "DELETE", template: "/gateway/v1/keys/{id}", id, tenantApi: true }),
  ),
);

/** NUL anywhere in what was generated (its own property below: Postgres refuses NUL in text). */
const hasNul = (value: unknown): boolean => /\\u0000|%00/i.test(JSON.stringify(value) ?? "");

describe("fuzz: bodies", () => {
  it("answers junk on every admin endpoint with a 4xx problem (or a 2xx keeping the server's ids), never a 5xx", {
    timeout: 90_000,
  }, async () => {
    const run = ledger.campaign("admin junk bodies");
    const arb = fc
      .record({
        endpoint,
        body: fc.oneof({ weight: 5, arbitrary: jsonBody }, { weight: 1, arbitrary: bytesBody }),
        contentType,
      })
      .filter((r) => !hasNul(r.endpoint) && !(typeof r.body === "string" && hasNul(r.body)));
    await fc.assert(
      fc.asyncProperty(arb, async ({ endpoint, body, contentType }) => {
        if (endpoint.tenantApi) tenantApiTurn();
        const headers: [string, string][] = [endpoint.tenantApi ? ["x-api-key", apiKey] : ADMIN];
        if (contentType !== undefined) headers.push(["content-type", contentType]);
        const sent = await run.send(
          { method: endpoint.method, path: endpointPath(endpoint), headers, body: body ?? null },
          { settle: true },
        );
        checkResponse(sent);
        check([200, 201, 400, 403, 404, 405, 409, 413, 415].includes(sent.status), "unexpected status", sent);
        if (sent.status < 300) await checkServerFields(run, endpoint, sent);
        check(({} as Record<string, unknown>).polluted === undefined, "Object.prototype was polluted", sent);
      }),
      { numRuns: 500, seed: fuzzSeed(0x626f6431) },
    );
    check(
      Object.getOwnPropertyNames(Object.prototype).every((n) => n !== "polluted"),
      "Object.prototype was polluted",
    );
    // The gateway still serves after the admin fuzz (whatever it did to the victims).
    const after = await run.send({
      method: "GET",
      path: `/v1/${run.marker}/after`,
      headers: [["x-api-key", apiKey]],
    });
    await checkEcho(after, caller);
  });

  it("refuses or ignores fields only the server sets (id, tenantId, keyHash, …): records keep the server's values", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("privileged fields in accepted bodies");
    // Bodies each endpoint accepts, with forged server-side fields glued on: refused (400), or
    // accepted with every forged field ignored (read back from Postgres).
    const accepted = (e: Endpoint, base: fc.Arbitrary<Record<string, unknown>>) =>
      fc.tuple(fc.constant(e), base);
    const arb = fc.record({
      target: fc.oneof(
        accepted(
          { method: "POST", template: "/admin/v1/tenants/{id}/keys", kind: "tenant" },
          fc.constantFrom({}, { name: "k" }),
        ),
        accepted({ method: "POST", template: "/admin/v1/keys/{id}/rotate", kind: "key" }, fc.constant({})),
        accepted(
          { method: "PATCH", template: "/admin/v1/plans/{id}", kind: "plan" },
          fc.constant({ name: "p" }),
        ),
        accepted(
          { method: "PATCH", template: "/admin/v1/tenants/{id}", kind: "tenant" },
          fc.constant({ name: "t" }),
        ),
        accepted(
          { method: "POST", template: "/gateway/v1/keys", tenantApi: true },
          fc.constantFrom({}, { name: "k" }),
        ),
        accepted(
          { method: "POST", template: "/admin/v1/tenants" },
          fc.constant(0).map(() => ({ slug: `priv-${uniq()}`, name: "t", planId: ids.plan })),
        ),
        accepted(
          { method: "POST", template: "/admin/v1/plans" },
          fc.constant({ name: "p", burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 1 }),
        ),
      ),
      forged: fc.subarray(Object.keys(FORGED), { minLength: 1 }),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ target: [endpoint, base], forged }) => {
        const body = { ...base, ...Object.fromEntries(forged.map((f) => [f, FORGED[f]])) };
        if (endpoint.tenantApi) tenantApiTurn();
        const headers: [string, string][] = [
          endpoint.tenantApi ? ["x-api-key", apiKey] : ADMIN,
          ["content-type", "application/json"],
        ];
        const sent = await run.send(
          { method: endpoint.method, path: endpointPath(endpoint), headers, body: JSON.stringify(body) },
          { settle: true },
        );
        if (sent.status < 300) return checkServerFields(run, endpoint, sent);
        checkRefused(sent, "validation_failed", "conflict");
      }),
      { numRuns: 60, seed: fuzzSeed(0x626f6437) },
    );
  });

  it("refuses NUL and lone surrogates in ids, queries and JSON strings with a 4xx; stores other controls as sent", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("NUL and controls in admin and tenant APIs");
    // Postgres text holds neither NUL nor a lone surrogate: README says those are refused with 400.
    // Other control characters (and U+2028) are valid Unicode text: a name or an entitlement holding
    // one is stored as sent (names trimmed), an id holding one names nothing (404), and a filter
    // holding one matches nothing (200, empty).
    const nasty = (chars: string[]) =>
      fc.tuple(base62(0, 6), fc.constantFrom(...chars), base62(0, 6)).map(([a, c, b]) => a + c + b);
    const URL_CHARS = ["\u0000", "\u0000\u0000", "\u0001", "\u001f", "\u007f", "\u2028"];
    const raw = nasty(URL_CHARS);
    const inJson = nasty([...URL_CHARS, "\ud800"]);
    const from = "2026-01-01T00:00:00Z";
    const to = "2026-01-02T00:00:00Z";
    /** Where the value lands, so the answer can be judged and the stored value read back. */
    type Place =
      | { in: "id" }
      | { in: "filter" }
      | { in: "json"; record: "tenant" | "plan" | "key"; field: string; trims: boolean; created: boolean };
    type Built = {
      method: string;
      path: string;
      body?: unknown;
      tenantApi?: boolean;
      value: string;
      place: Place;
    };
    const ID_ROUTES: [string, string][] = [
      ["GET", "/admin/v1/tenants/{}"],
      ["GET", "/admin/v1/keys/{}"],
      ["GET", "/admin/v1/plans/{}"],
      ["PATCH", "/admin/v1/plans/{}"],
      ["PATCH", "/admin/v1/tenants/{}"],
      ["DELETE", "/admin/v1/keys/{}"],
      ["POST", "/admin/v1/keys/{}/rotate"],
      ["GET", "/admin/v1/tenants/{}/keys"],
      ["POST", "/admin/v1/tenants/{}/keys"],
      ["GET", "/admin/v1/tenants/{}/usage"],
    ];
    const json = (
      record: "tenant" | "plan" | "key",
      field: string,
      trims: boolean,
      created: boolean,
    ): Place => ({
      in: "json",
      record,
      field,
      trims,
      created,
    });
    const built: fc.Arbitrary<Built> = fc.oneof(
      fc.tuple(fc.constantFrom(...ID_ROUTES), raw).map(([[method, template], value]) => ({
        method,
        path: template.replace("{}", encodeURIComponent(value)),
        body: method === "GET" || method === "DELETE" ? undefined : {},
        value,
        place: { in: "id" } as Place,
      })),
      raw.map((value) => ({
        method: "GET",
        path: `/admin/v1/tenants?slug=${encodeURIComponent(value)}`,
        value,
        place: { in: "filter" } as Place,
      })),
      inJson.map((value) => ({
        method: "POST",
        path: "/admin/v1/tenants",
        body: { slug: `nul-${uniq()}`, name: value, planId: ids.plan },
        value,
        place: json("tenant", "name", true, true),
      })),
      inJson.map((value) => ({
        method: "POST",
        path: `/admin/v1/tenants/${ids.tenant}/keys`,
        body: { name: value },
        value,
        place: json("key", "name", true, true),
      })),
      inJson.map((value) => ({
        method: "POST",
        path: "/admin/v1/plans",
        body: {
          name: `p-${uniq()}`,
          burstCapacity: 1,
          refillTokens: 1,
          refillPeriodSeconds: 1,
          entitlements: [value],
        },
        value,
        place: json("plan", "entitlements", false, true),
      })),
      inJson.map((value) => ({
        method: "PATCH",
        path: `/admin/v1/plans/${ids.plan}`,
        body: { entitlements: [value] },
        value,
        place: json("plan", "entitlements", false, false),
      })),
      inJson.map((value) => ({
        method: "PATCH",
        path: `/admin/v1/tenants/${ids.tenant}`,
        body: { name: value },
        value,
        place: json("tenant", "name", true, false),
      })),
      raw.map((value) => ({
        method: "GET",
        path: `/gateway/v1/usage/timeseries?from=${from}&to=${to}&route=${encodeURIComponent(value)}`,
        tenantApi: true,
        value,
        place: { in: "filter" } as Place,
      })),
      inJson.map((value) => ({
        method: "POST",
        path: "/gateway/v1/keys",
        body: { name: value },
        tenantApi: true,
        value,
        place: json("key", "name", true, true),
      })),
      raw.map((value) => ({
        method: "DELETE",
        path: `/gateway/v1/keys/${encodeURIComponent(value)}`,
        tenantApi: true,
        value,
        place: { in: "id" } as Place,
      })),
    );
    const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    await fc.assert(
      fc.asyncProperty(built, async ({ method, path, body, tenantApi, value, place }) => {
        if (tenantApi) tenantApiTurn();
        const headers: [string, string][] = [tenantApi ? ["x-api-key", apiKey] : ADMIN];
        if (body !== undefined) headers.push(["content-type", "application/json"]);
        const sent = await run.send(
          { method, path, headers, body: body === undefined ? null : JSON.stringify(body) },
          { settle: true },
        );
        checkResponse(sent);
        const unstorable = value.includes("\u0000") || LONE_SURROGATE.test(value);
        if (place.in === "id") {
          if (unstorable) return checkRefused(sent, "validation_failed", "not_found");
          return checkRefused(sent, "not_found");
        }
        if (place.in === "filter") {
          if (unstorable) return checkRefused(sent, "validation_failed");
          check(sent.status === 200, "a filter with a control character was not answered", sent);
          const page = JSON.parse(sent.body) as { data: unknown[] };
          check(page.data.length === 0, "a filter with a control character matched something", sent);
          return;
        }
        const stored = place.trims ? value.trim() : value;
        const recordId = place.created ? createdId(sent, place.record) : ids[place.record];
        if (unstorable || stored.length === 0) {
          checkRefused(sent, "validation_failed");
          if (recordId === undefined) return;
        } else {
          check(sent.status === 200 || sent.status === 201, "storable text was refused", sent);
        }
        check(recordId !== undefined, "no id in the created record", sent);
        const read = await readRecord(run, place.record, recordId);
        const got = read[place.field];
        const text = Array.isArray(got) ? got[0] : got;
        check(
          typeof text !== "string" || !text.includes("\u0000"),
          `stored ${place.field} holds a NUL`,
          read.sent,
        );
        if (!unstorable && stored.length > 0) {
          check(
            text === stored,
            `stored ${place.field} ${JSON.stringify(text)} != ${JSON.stringify(stored)}`,
            read.sent,
          );
        }
      }),
      { numRuns: 150, seed: fuzzSeed(0x626f6436) },
    );
  });

  it("refuses declared Content-Lengths over the limit or malformed with 413/400, before the origin", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("declared Content-Length");
    const declared = fc.oneof(
      fc.integer({ min: MAX_BODY + 1, max: Number.MAX_SAFE_INTEGER }).map(String),
      fc.constant(String(MAX_BODY + 1)),
      fc.integer({ min: 20, max: 80 }).map((n) => "9".repeat(n)),
      fc.constantFrom("-1", "1e9", "0x10", "+5", "1.5", "abc", "5, 5", "\u0663", "Infinity", "NaN", "1_000"),
    );
    const arb = fc.record({
      declared,
      method: methodWithBody,
      idempotent: fc.boolean(),
      // Always a body: without one there is nothing for a Content-Length to describe.
      body: fc.string({ minLength: 1, maxLength: 64 }),
      target: fc.constantFrom("proxy", "proxy", "admin"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ declared, method, idempotent, body, target }) => {
        const headers: [string, string][] = [["content-length", declared]];
        let path = `/v1/${run.marker}/cl`;
        if (target === "admin") {
          headers.push(ADMIN, ["content-type", "application/json"]);
          path = "/admin/v1/plans";
        } else {
          headers.push(["x-api-key", apiKey]);
          if (idempotent) headers.push(["idempotency-key", `cl-${run.marker}-${run.sent}`]);
        }
        const sent = await run.send({ method, path, headers, body }, { settle: target === "admin" });
        if (target === "admin") {
          checkResponse(sent);
          if (/^\d+$/.test(declared)) checkRefused(sent, "payload_too_large");
          else check(sent.status >= 400, "a malformed Content-Length was accepted by the admin API", sent);
        } else {
          checkRefused(sent, "payload_too_large", "bad_request");
        }
      }),
      { numRuns: 300, seed: fuzzSeed(0x626f6432) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a refused body reached the origin");
  });

  for (const chunked of [false, true]) {
    const how = chunked ? "chunked (no Content-Length)" : "with a Content-Length";
    it(`streams bodies ${how} up to the limit intact, refuses bigger ones with 413 before the origin`, {
      timeout: 90_000,
    }, async () => {
      const run = ledger.campaign(`actual large bodies, ${chunked ? "chunked" : "fixed length"}`);
      const size = fc.oneof(
        fc.constantFrom(MAX_BODY - 1, MAX_BODY, MAX_BODY + 1),
        fc.integer({ min: MAX_BODY + 2, max: MAX_BODY + 1024 * 1024 }),
        fc.integer({ min: 0, max: 256 * 1024 }),
      );
      const arb = fc.record({ size, idempotent: fc.boolean(), method: fc.constantFrom("POST", "PUT") });
      await fc.assert(
        fc.asyncProperty(arb, async ({ size, idempotent, method }) => {
          const tag = `${run.sent}-${size}`;
          const headers: [string, string][] = [
            ["x-api-key", apiKey],
            ["content-type", "application/octet-stream"],
          ];
          if (idempotent) headers.push(["idempotency-key", `big-${run.marker}-${tag}`]);
          if (!chunked) headers.push(["content-length", String(size)]);
          const sent = await run.send({
            method,
            path: `/v1/${run.marker}/${tag}`,
            headers,
            body: chunked ? chunks(size) : new Uint8Array(size).fill(0x61),
          });
          if (size > MAX_BODY) {
            checkRefused(sent, "payload_too_large");
            return;
          }
          const echo = await checkEcho(sent, caller);
          check(echo?.body.length === size, `origin received ${echo?.body.length} of ${size} bytes`, sent);
        }),
        { numRuns: 8, seed: fuzzSeed(chunked ? 0x626f6435 : 0x626f6433) },
      );
      const calls = await checkOriginCalls(run.marker);
      check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
    });
  }

  it("refuses admin bodies over 64 KiB with 413, declared or not", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("admin bodies around 64 KiB");
    const arb = fc.record({
      size: fc.integer({ min: API_BODY_LIMIT - 2048, max: API_BODY_LIMIT + 8192 }),
      declare: fc.boolean(),
      path: fc.constantFrom("/admin/v1/plans", "/admin/v1/tenants", `/admin/v1/keys/x/rotate`),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ size, declare, path }) => {
        const body = `{"name":"${"x".repeat(Math.max(0, size - 11))}"}`;
        const headers: [string, string][] = [ADMIN, ["content-type", "application/json"]];
        if (declare) headers.push(["content-length", String(body.length)]);
        const sent = await run.send(
          { method: "POST", path, headers, body: declare ? body : chunks(body) },
          { settle: true },
        );
        if (body.length > API_BODY_LIMIT) checkRefused(sent, "payload_too_large");
        else checkRefused(sent, "validation_failed", "not_found");
      }),
      { numRuns: 60, seed: fuzzSeed(0x626f6434) },
    );
  });
});

/** A body as a stream of odd-sized chunks (no Content-Length: chunked on the wire). */
function chunks(source: number | string): ReadableStream<Uint8Array> {
  const bytes = typeof source === "string" ? new TextEncoder().encode(source) : null;
  const total = bytes ? bytes.length : (source as number);
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= total) return controller.close();
      const n = Math.min(total - offset, 65_536 + (offset % 7919));
      controller.enqueue(bytes ? bytes.slice(offset, offset + n) : new Uint8Array(n).fill(0x61));
      offset += n;
    },
  });
}

/** The id of what a 2xx create answered (a tenant create answers `{ tenant, key }`), else undefined. */
function createdId(sent: Sent, record: "tenant" | "plan" | "key"): string | undefined {
  if (sent.status !== 200 && sent.status !== 201) return undefined;
  const body = JSON.parse(sent.body) as Record<string, { id?: string }> & { id?: string };
  return record === "tenant" && body.tenant ? body.tenant.id : body.id;
}

/** Reads a record back through the admin API (GET by id): what Postgres holds now. */
async function readRecord(
  run: Campaign,
  record: "tenant" | "plan" | "key",
  id: string,
): Promise<Record<string, unknown> & { sent: Sent }> {
  const sent = await run.send({ method: "GET", path: `/admin/v1/${record}s/${id}`, headers: [ADMIN] });
  check(sent.status === 200, `could not read ${record} ${id} back`, sent);
  return { ...(JSON.parse(sent.body) as Record<string, unknown>), sent };
}

/** The records a 2xx on `endpoint` made or changed, and the server's values their fields must hold. */
function answered(endpoint: Endpoint, body: Record<string, unknown>) {
  type Expect = {
    record: "tenant" | "plan" | "key";
    value: Record<string, unknown>;
    id?: string;
    tenantId?: string;
  };
  const key = (value: unknown, tenantId: string): Expect => ({
    record: "key",
    value: value as Record<string, unknown>,
    tenantId,
  });
  switch (`${endpoint.method} ${endpoint.template}`) {
    case "POST /admin/v1/plans":
      return [{ record: "plan", value: body } as Expect];
    case "POST /admin/v1/tenants": {
      const tenant = body.tenant as Record<string, unknown>;
      return [{ record: "tenant", value: tenant } as Expect, key(body.key, String(tenant.id))];
    }
    case "POST /admin/v1/tenants/{id}/keys":
      return [key(body, ids.tenant)];
    case "POST /admin/v1/keys/{id}/rotate":
      return [key(body, ids.tenant)];
    case "PATCH /admin/v1/plans/{id}":
      return [{ record: "plan", value: body, id: ids.plan } as Expect];
    case "PATCH /admin/v1/tenants/{id}":
      return [{ record: "tenant", value: body, id: ids.tenant } as Expect];
    case "POST /gateway/v1/keys":
      return [key(body, caller.tenantId)];
    default:
      throw new FuzzFailure(`a 2xx from ${endpoint.method} ${endpoint.template} was not expected`);
  }
}

const ID_PREFIX = { tenant: "ten_", plan: "plan_", key: "key_" } as const;

/**
 * After a 2xx: every record it made or changed, read back from Postgres, holds the server's id
 * (the path's, or a fresh one of its kind, never a forged one), the server's tenant, a server-made
 * creation time, no key hash on the wire; and a created key authenticates with the plaintext shown
 * (its stored hash is the server's, not a client's `keyHash`).
 */
async function checkServerFields(run: Campaign, endpoint: Endpoint, sent: Sent): Promise<void> {
  for (const want of answered(endpoint, JSON.parse(sent.body) as Record<string, unknown>)) {
    const id = want.value.id;
    check(
      typeof id === "string" && id.startsWith(ID_PREFIX[want.record]),
      `answered a ${want.record} id ${id}`,
      sent,
    );
    if (want.id !== undefined)
      check(id === want.id, `changed ${want.record} ${want.id} answered as ${id}`, sent);
    check(id !== FORGED.id, "the record took a forged id", sent);
    const read = await readRecord(run, want.record, id);
    check(read.id === id, `read back ${want.record} ${id} as ${String(read.id)}`, read.sent);
    check(read.createdAt !== FORGED.createdAt, "the record took a forged createdAt", read.sent);
    for (const hidden of ["keyHash", "key_hash", "hash"])
      check(!(hidden in read), `${hidden} on the wire`, read.sent);
    if (want.record !== "key") continue;
    check(
      read.tenantId === want.tenantId,
      `key of tenant ${want.tenantId} stored under ${String(read.tenantId)}`,
      read.sent,
    );
    const rotatedFrom = endpoint.template === "/admin/v1/keys/{id}/rotate" ? ids.key : null;
    check(
      read.rotatedFromId === rotatedFrom,
      `rotatedFromId ${String(read.rotatedFromId)} is not the server's`,
      read.sent,
    );
    const plaintext = want.value.key;
    check(typeof plaintext === "string", "a created key was not shown", sent);
    const use = await run.send({
      method: "GET",
      path: `/v1/${run.marker}/new-key`,
      headers: [["x-api-key", plaintext]],
    });
    check(
      use.status !== 401,
      "a created key does not authenticate: its stored hash is not the server's",
      use,
    );
  }
}
