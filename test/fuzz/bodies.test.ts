/**
 * Fuzz: request bodies. Junk on the admin API (invalid JSON, wrong types, wrong media types, deep
 * nesting, prototype keys) is a 4xx problem, never a 5xx, and pollutes nothing; declared and actual
 * bodies over the limits are 413 before the origin; bodies under the limit reach it intact.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import { base62, methodWithBody } from "../support/fuzz-arbs";
import {
  type Caller,
  check,
  checkEcho,
  checkOriginCalls,
  checkRefused,
  checkResponse,
  FUZZ_PLAN,
  Ledger,
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

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  apiKey = t.key;
  caller = { tenantId: t.tenantId, keyId: t.keyId, env: "live" };
  const plan = await createPlan();
  const victim = await seedTenant();
  const key = await createKey(victim.tenantId);
  Object.assign(ids, { plan: plan.id, tenant: victim.tenantId, key: key.id });
});

/** Every field name the admin API knows, plus the ones an attacker tries. */
const FIELDS = [
  "name",
  "burstCapacity",
  "refillTokens",
  "refillPeriodSeconds",
  "dailyQuota",
  "monthlyQuota",
  "entitlements",
  "stripePriceId",
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

const jsonBody = fc.oneof(
  { weight: 3, arbitrary: wrongTypes },
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
  it("answers junk on every admin endpoint with a 4xx problem (or a 2xx), never a 5xx, polluting nothing", {
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
        const headers: [string, string][] = [endpoint.tenantApi ? ["x-api-key", apiKey] : ADMIN];
        if (contentType !== undefined) headers.push(["content-type", contentType]);
        const sent = await run.send(
          { method: endpoint.method, path: endpointPath(endpoint), headers, body: body ?? null },
          { settle: true },
        );
        checkResponse(sent);
        check([200, 201, 400, 403, 404, 405, 409, 413, 415].includes(sent.status), "unexpected status", sent);
        check(({} as Record<string, unknown>).polluted === undefined, "Object.prototype was polluted", sent);
      }),
      { numRuns: 500, seed: 0x626f6431 },
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

  it("refuses NUL and control characters in ids, queries and JSON strings with a 4xx, never a 5xx", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("NUL and controls in admin and tenant APIs");
    const nasty = (chars: string[]) =>
      fc.tuple(base62(0, 6), fc.constantFrom(...chars), base62(0, 6)).map(([a, c, b]) => a + c + b);
    const inUrl = nasty(["\u0000", "\u0000\u0000", "\u0001", "\u001f", "\u007f", "\u2028"]).map(
      encodeURIComponent,
    );
    const inJson = nasty(["\u0000", "\u0000\u0000", "\u0001", "\u001f", "\u007f", "\u2028", "\ud800"]);
    const from = "2026-01-01T00:00:00Z";
    const to = "2026-01-02T00:00:00Z";
    type Built = { method: string; path: string; body?: unknown; tenantApi?: boolean };
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
    const built: fc.Arbitrary<Built> = fc.oneof(
      fc.tuple(fc.constantFrom(...ID_ROUTES), inUrl).map(([[method, template], id]) => ({
        method,
        path: template.replace("{}", id),
        body: method === "GET" || method === "DELETE" ? undefined : {},
      })),
      inUrl.map((v) => ({ method: "GET", path: `/admin/v1/tenants?slug=${v}` })),
      inJson.map((v) => ({
        method: "POST",
        path: "/admin/v1/tenants",
        body: { slug: `nul-${uniq()}`, name: v, planId: ids.plan },
      })),
      inJson.map((v) => ({
        method: "POST",
        path: `/admin/v1/tenants/${ids.tenant}/keys`,
        body: { name: v },
      })),
      inJson.map((v) => ({
        method: "POST",
        path: "/admin/v1/plans",
        body: {
          name: `p-${uniq()}`,
          burstCapacity: 1,
          refillTokens: 1,
          refillPeriodSeconds: 1,
          entitlements: [v],
        },
      })),
      inJson.map((v) => ({
        method: "PATCH",
        path: `/admin/v1/plans/${ids.plan}`,
        body: { stripePriceId: v },
      })),
      inJson.map((v) => ({ method: "PATCH", path: `/admin/v1/tenants/${ids.tenant}`, body: { name: v } })),
      inUrl.map((v) => ({
        method: "GET",
        path: `/gateway/v1/usage/timeseries?from=${from}&to=${to}&route=${v}`,
        tenantApi: true,
      })),
      inJson.map((v) => ({ method: "POST", path: "/gateway/v1/keys", body: { name: v }, tenantApi: true })),
      inUrl.map((v) => ({ method: "DELETE", path: `/gateway/v1/keys/${v}`, tenantApi: true })),
    );
    await fc.assert(
      fc.asyncProperty(built, async ({ method, path, body, tenantApi }) => {
        const headers: [string, string][] = [tenantApi ? ["x-api-key", apiKey] : ADMIN];
        if (body !== undefined) headers.push(["content-type", "application/json"]);
        const sent = await run.send(
          { method, path, headers, body: body === undefined ? null : JSON.stringify(body) },
          { settle: true },
        );
        checkResponse(sent);
      }),
      { numRuns: 150, seed: 0x626f6436 },
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
      { numRuns: 300, seed: 0x626f6432 },
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
        { numRuns: 8, seed: chunked ? 0x626f6435 : 0x626f6433 },
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
      { numRuns: 60, seed: 0x626f6434 },
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
