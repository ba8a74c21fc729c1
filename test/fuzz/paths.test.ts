/**
 * Fuzz: paths. Whatever the path — `..` and `%2e%2e`, encoded or doubled slashes, backslashes,
 * overlong UTF-8, unicode, very long, junk queries — the origin only ever sees the normal form of
 * a path inside the route table, the gateway's own `/admin` and `/gateway` are never reached
 * through the proxy, and the answer is the one the README promises: ambiguous → 400, outside the
 * table → 404, not entitled → 403, else the origin's.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import {
  base62,
  hostilePath,
  invalidKeyMaterial,
  plausiblePath,
  segment,
  traversalPath,
} from "../support/fuzz-arbs";
import {
  AMBIGUOUS,
  BASE,
  type Caller,
  check,
  checkEcho,
  checkKeyRefused,
  checkOriginCalls,
  checkRefused,
  checkResponse,
  FUZZ_PLAN,
  hasControlValue,
  inRouteTable,
  Ledger,
  type Sent,
} from "../support/fuzz-kit";
import { createKey, seedTenant } from "../support/gateway";

const ledger = new Ledger("paths.test.ts");
const keys: { key: string; caller: Caller }[] = [];
/** The fuzz plan's entitlements (createPlan's default). */
const ENTITLEMENTS = ["api"];

interface RouteEntry {
  prefix: string;
  entitlement?: string;
}
const ROUTES = (JSON.parse(env.ROUTES) as RouteEntry[]).sort((a, b) => b.prefix.length - a.prefix.length);

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  const test = await createKey(t.tenantId, { env: "test" });
  keys.push(
    { key: t.key, caller: { tenantId: t.tenantId, keyId: t.keyId, env: "live" } },
    { key: test.key, caller: { tenantId: t.tenantId, keyId: test.id, env: "test" } },
  );
});

/** The gateway's own endpoints, as Hono routes them (it percent-decodes before matching). */
function gatewayEndpoint(pathname: string): boolean {
  let decoded = pathname;
  try {
    decoded = decodeURI(pathname);
  } catch {
    // undecodable: matched raw
  }
  return [pathname, decoded].some((p) => /^\/(admin|gateway|health)(\/|$)/i.test(p));
}

/** What the README promises for a path, given a valid key on the fuzz plan. */
function expectedOutcome(path: string): "endpoint" | "ambiguous" | "unrouted" | "not entitled" | "proxied" {
  const { pathname } = new URL(`${BASE}${path}`);
  if (gatewayEndpoint(pathname)) return "endpoint";
  if (AMBIGUOUS.test(pathname)) return "ambiguous";
  if (!inRouteTable(pathname)) return "unrouted";
  const route = ROUTES.find((r) => pathname.startsWith(r.prefix) || `${pathname}/` === r.prefix);
  if (route?.entitlement && !ENTITLEMENTS.includes(route.entitlement)) return "not entitled";
  return "proxied";
}

/** A gateway endpoint reached with an API key: never the origin, never the admin API. */
function checkEndpoint(sent: Sent): void {
  checkResponse(sent);
  check(!sent.fromOrigin, "a gateway endpoint path reached the origin", sent);
  const { pathname } = new URL(`${BASE}${sent.request.path}`);
  let decoded = pathname;
  try {
    decoded = decodeURI(pathname);
  } catch {}
  if (/^\/admin(\/|$)/i.test(decoded) || /^\/admin(\/|$)/i.test(pathname)) {
    check(sent.status >= 400, "an API key was let into the admin API", sent);
  }
}

const anyPath = (marker: string) =>
  fc.oneof(
    { weight: 3, arbitrary: hostilePath(marker) },
    { weight: 2, arbitrary: traversalPath(marker) },
    { weight: 3, arbitrary: plausiblePath(marker) },
  );

describe("fuzz: paths", () => {
  it("with a valid key: the origin sees only in-table normal paths; everything else is 400/403/404", {
    timeout: 90_000,
  }, async () => {
    const run = ledger.campaign("hostile paths, valid key");
    const arb = fc.record({
      which: fc.nat({ max: 1 }),
      path: anyPath(run.marker),
      method: fc.constantFrom("GET", "GET", "POST", "DELETE", "OPTIONS", "HEAD"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, path, method }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const sent = await run.send({ method, path, headers: [["authorization", `Bearer ${key}`]] });
        const outcome = expectedOutcome(path);
        switch (outcome) {
          case "endpoint":
            return checkEndpoint(sent);
          case "ambiguous":
            return checkRefused(sent, "bad_request");
          case "unrouted":
            return checkRefused(sent, "not_found");
          case "not entitled":
            return checkRefused(sent, "plan_upgrade_required");
          case "proxied":
            check(sent.status === 200, "an in-table path with a valid key was not proxied", sent);
            await checkEcho(sent, caller);
        }
      }),
      { numRuns: 2000, seed: 0x70617431 },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("without a valid key, no path reaches the origin", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("hostile paths, no valid key");
    const arb = fc.record({
      path: anyPath(run.marker),
      auth: fc.oneof(
        fc.constant<[string, string][]>([]),
        invalidKeyMaterial(keys.map((k) => k.key)).map((m): [string, string][] => [["x-api-key", m.key]]),
        fc.constant<[string, string][]>([["authorization", "Bearer test-admin-token"]]),
      ),
      method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ path, auth, method }) => {
        const sent = await run.send({ method, path, headers: auth });
        checkResponse(sent);
        check(!sent.fromOrigin, "reached the origin without a key", sent);
        const outcome = expectedOutcome(path);
        if (outcome === "endpoint") return; // /health answers anyone; the admin token may be right
        if (hasControlValue(sent.request)) return checkRefused(sent, "bad_request");
        if (outcome === "ambiguous") return checkRefused(sent, "bad_request");
        if (outcome === "unrouted") return checkRefused(sent, "not_found");
        checkKeyRefused(sent);
      }),
      { numRuns: 2000, seed: 0x70617432 },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "an unauthenticated request reached the origin");
  });

  it("proxies long paths (1–8 KB: unicode, percent-encodings) byte for byte", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("long paths, valid key");
    const longTail = fc
      .tuple(fc.array(segment, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1_000, max: 8_000 }))
      .map(([segs, size]) => {
        const unit = segs
          .map((s) => encodeURIComponent(s))
          .filter((s) => s.length > 0)
          .join("-");
        const seed = unit.length > 0 ? unit : "x";
        return seed
          .repeat(Math.ceil(size / seed.length))
          .slice(0, size)
          .replace(/%[0-9A-Fa-f]?$/, "");
      });
    const arb = fc.record({ which: fc.nat({ max: 1 }), tail: longTail });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, tail }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const path = `/v1/${run.marker}/${tail}`;
        const sent = await run.send({ method: "GET", path, headers: [["x-api-key", key]] });
        if (expectedOutcome(path) !== "proxied") return checkRefused(sent, "bad_request", "not_found");
        await checkEcho(sent, caller);
      }),
      { numRuns: 150, seed: 0x70617433 },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("refuses very long paths (up to ~100 KB) without a key, never a 5xx", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("very long paths, no key");
    const arb = fc.record({
      seed: fc.oneof(base62(1, 12), fc.constantFrom("../", "%2e%2e/", "a/", "%F0%9F%98%80", "é")),
      size: fc.integer({ min: 8_000, max: 100_000 }),
      lead: fc.constantFrom("/v1/", "/admin/v1/", "/gateway/v1/", "/", "/v9/"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ seed, size, lead }) => {
        const body = seed.repeat(Math.ceil(size / seed.length)).slice(0, size);
        const sent = await run.send({ method: "GET", path: `${lead}${run.marker}/${body}`, headers: [] });
        checkResponse(sent);
        check(!sent.fromOrigin && sent.status >= 400, "a keyless long path was answered", sent);
      }),
      { numRuns: 100, seed: 0x70617434 },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a keyless long path reached the origin");
  });
});
