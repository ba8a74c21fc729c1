/**
 * Fuzz: paths. Whatever the path — `..` and `%2e%2e`, encoded or doubled slashes, backslashes,
 * overlong UTF-8, unicode, very long, junk queries — what the origin receives, read by a lenient
 * origin after one more percent-decode, stays under its route prefix and never names `/admin` or
 * `/gateway` (test/support/path-oracle.ts, written from the README, not from the gateway's matcher);
 * everything else is a gateway 4xx. A plain path under an entitled route is always proxied as is.
 *
 * What the runtime does first: every request here is a `new Request(url)`, and the WHATWG URL parser
 * resolves `.` and `..` segments (also spelt `%2e`, `.%2e`, `%2e.`, `%2e%2e`, any case), drops the
 * fragment and percent-encodes spaces, quotes, `<>` and non-ASCII before the Worker runs: so a
 * generated `/v1/%2e%2e/admin` arrives as `/admin`, and the Worker's own dot-segment handling is
 * never exercised from this file. Backslashes and `;` do reach it (a non-special char in an `https:`
 * path stays). Raw dot segments, `..;` and backslashes as the client's bytes are sent by
 * test/wire/hostile-wire.ts over a socket instead.
 */
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
  BASE,
  type Caller,
  check,
  checkEcho,
  checkKeyRefused,
  checkOriginCalls,
  checkRefused,
  checkResponse,
  FUZZ_PLAN,
  fuzzSeed,
  hasControlValue,
  Ledger,
  originPathname,
  type Sent,
} from "../support/fuzz-kit";
import { createKey, seedTenant } from "../support/gateway";
import { isPlainPath, namesReadmeAmbiguity, originPathViolation, routeOf } from "../support/path-oracle";

const ledger = new Ledger("paths.test.ts");
const keys: { key: string; caller: Caller }[] = [];
/** The fuzz plan's entitlements (createPlan's default). */
const ENTITLEMENTS = ["api"];

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  const test = await createKey(t.tenantId, { env: "test" });
  keys.push(
    { key: t.key, caller: { tenantId: t.tenantId, keyId: t.keyId, env: "live" } },
    { key: test.key, caller: { tenantId: t.tenantId, keyId: test.id, env: "test" } },
  );
});

/** The pathname the Worker sees: the URL parser's normal form of what was generated. */
const workerPathname = (path: string) => new URL(`${BASE}${path}`).pathname;

/** The README's own endpoints (`/admin`, `/gateway`, `/health`), as sent or once decoded. */
function gatewayEndpoint(pathname: string): boolean {
  let decoded = pathname;
  try {
    decoded = decodeURI(pathname);
  } catch {
    // undecodable: matched raw
  }
  return [pathname, decoded].some((p) => /^\/(admin|gateway|health)(\/|$)/i.test(p));
}

/** A gateway endpoint reached with an API key: never the origin, never the admin API. */
function checkEndpoint(sent: Sent): void {
  checkResponse(sent);
  check(!sent.fromOrigin, "a gateway endpoint path reached the origin", sent);
  const pathname = workerPathname(sent.request.path);
  let decoded = pathname;
  try {
    decoded = decodeURI(pathname);
  } catch {}
  if (/^\/admin(\/|$)/i.test(decoded) || /^\/admin(\/|$)/i.test(pathname)) {
    check(sent.status >= 400, "an API key was let into the admin API", sent);
  }
}

/** Whether the plan lacks the entitlement of the route `pathname` falls under. */
const notEntitled = (pathname: string) => {
  const entitlement = routeOf(pathname)?.entitlement;
  return entitlement !== undefined && !ENTITLEMENTS.includes(entitlement);
};

/**
 * The oracle for one answer to a valid key: proxied, and then the origin's path is safe (the
 * independent oracle) and the URL's normal form (checkEcho); or a gateway 4xx — 400 for the
 * spellings the README names ambiguous, 403 only on a route the plan lacks, else 400/404. A plain
 * path under an entitled route must be proxied.
 */
async function checkPathAnswer(sent: Sent, caller: Caller): Promise<void> {
  const pathname = workerPathname(sent.request.path);
  if (gatewayEndpoint(pathname)) return checkEndpoint(sent);
  if (sent.fromOrigin) {
    check(!notEntitled(pathname), "proxied on a route the plan lacks", sent);
    const echo = await checkEcho(sent, caller);
    if (echo) {
      const received = originPathname(echo);
      const violation = originPathViolation(received);
      check(violation === undefined, `the origin received ${echo.path}: ${violation}`, sent);
    }
  }
  if (namesReadmeAmbiguity(pathname)) return checkRefused(sent, "bad_request");
  const routed = routeOf(pathname) !== undefined;
  if (!isPlainPath(pathname)) {
    // Proxied safely (checked above) or refused by its path, or by its route's entitlement.
    const codes = [
      "bad_request",
      "not_found",
      ...(routed && notEntitled(pathname) ? ["plan_upgrade_required"] : []),
    ];
    if (!sent.fromOrigin) checkRefused(sent, ...codes);
    return;
  }
  if (!routed) return checkRefused(sent, "not_found");
  if (notEntitled(pathname)) return checkRefused(sent, "plan_upgrade_required");
  check(sent.status === 200 && sent.fromOrigin, "a plain in-table path was not proxied", sent);
}

const anyPath = (marker: string) =>
  fc.oneof(
    { weight: 3, arbitrary: hostilePath(marker) },
    { weight: 2, arbitrary: traversalPath(marker) },
    { weight: 3, arbitrary: plausiblePath(marker) },
  );

describe("fuzz: paths", () => {
  it("with a valid key: the origin's path, decoded once more, stays under its route; else 400/403/404", {
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
        await checkPathAnswer(sent, caller);
      }),
      { numRuns: 2000, seed: fuzzSeed(0x70617431) },
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
        const pathname = workerPathname(path);
        if (gatewayEndpoint(pathname)) return; // /health answers anyone; the admin token may be right
        if (hasControlValue(sent.request)) return checkRefused(sent, "bad_request");
        if (namesReadmeAmbiguity(pathname)) return checkRefused(sent, "bad_request");
        const routed = routeOf(pathname) !== undefined;
        if (isPlainPath(pathname)) return routed ? checkKeyRefused(sent) : checkRefused(sent, "not_found");
        // Neither plain nor named by the README: refused by its path or for its key, never let in.
        checkRefused(sent, "bad_request", "not_found", "unauthorized", "invalid_request");
      }),
      { numRuns: 2000, seed: fuzzSeed(0x70617432) },
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
        await checkPathAnswer(sent, caller);
      }),
      { numRuns: 150, seed: fuzzSeed(0x70617433) },
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
      { numRuns: 100, seed: fuzzSeed(0x70617434) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a keyless long path reached the origin");
  });
});
