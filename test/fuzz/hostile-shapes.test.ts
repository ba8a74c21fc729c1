/**
 * Fuzz: request shapes refused before admission (workers/edge/request-shape.ts, resolve-route.ts).
 * A GET/HEAD announcing a body, a header name outside the RFC 9110 token set, a control character
 * in a header value, a `;` path parameter — with any key or none — is a 400 `bad_request`
 * problem: never the origin, never a 5xx, never a spent token.
 *
 * What `new Request()` (and so every test here) normalises or refuses before the Worker sees it:
 * - a body on GET/HEAD: the constructor throws. Sent instead as what announces one on the wire,
 *   `Content-Length` ≠ 0 or `Transfer-Encoding` (RFC 9112 §6.3); the Worker refuses those
 *   whatever the stream holds. A real body on the wire (Content-Length or chunked) is sent as raw
 *   bytes by `npm run test:wire` (test/wire/hostile-wire.ts), with the other shapes below that a
 *   Request cannot carry.
 * - CR, LF, NUL in a value, and names with separators, spaces or controls: `Headers` throws
 *   (test/fuzz/headers.test.ts asserts it). obs-fold (CRLF + SP inside a value) is unrepresentable
 *   for the same reason; on the wire, workerd's parser unfolds it into SP before the Worker runs
 *   (RFC 9112 §5.2 allows that), so the origin never sees a fold. Leading/trailing SP/HTAB of a
 *   value are trimmed; names are lowercased.
 * - Names with bytes ≥ 0x80 and values with other C0 controls or DEL are accepted by `Headers`:
 *   those are generated here.
 * - `.`/`..` segments are resolved and `\` turned into `/` by the URL parser; `..;` and `;` are
 *   not (generated here).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  bodyAnnouncement,
  controlValue,
  fieldValue,
  nonTokenName,
  pathParamPath,
  plausiblePath,
} from "../support/fuzz-arbs";
import {
  type Caller,
  check,
  checkEcho,
  checkOriginCalls,
  checkRefused,
  FUZZ_PLAN,
  fuzzSeed,
  Ledger,
} from "../support/fuzz-kit";
import { bearer, gateway, seedTenant } from "../support/gateway";

const ledger = new Ledger("hostile-shapes.test.ts");
/** A tenant whose bucket holds one token that never refills within the run: a spent token shows. */
let scarce: { key: string };
let roomy: { key: string; caller: Caller };

beforeAll(async () => {
  const t = await seedTenant({ plan: { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 3600 } });
  scarce = { key: t.key };
  const r = await seedTenant({ plan: FUZZ_PLAN });
  roomy = { key: r.key, caller: { tenantId: r.tenantId, keyId: r.keyId, env: "live" } };
});

/** Credentials a request may carry: a valid key, junk, or none. */
const credentials = (key: string) =>
  fc.constantFrom<[string, string][]>(
    [["authorization", `Bearer ${key}`]],
    [["x-api-key", "gw_live_junk"]],
    [],
  );

describe("fuzz: hostile request shapes", () => {
  it("GET/HEAD announcing a body: 400, no origin call, no token spent", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("GET/HEAD with a body");
    const arb = fc.record({
      method: fc.constantFrom("GET", "HEAD"),
      path: plausiblePath(run.marker),
      announce: bodyAnnouncement,
      auth: credentials(scarce.key),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, path, announce, auth }) => {
        const sent = await run.send({ method, path, headers: [...auth, ...announce] });
        checkRefused(sent, "bad_request");
      }),
      { numRuns: 400, seed: fuzzSeed(0x686f7331) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a GET/HEAD with a body reached the origin");
    // The scarce tenant's one token is still there: none of the above reached admission.
    const after = await gateway(`/v1/${run.marker}/after`, { headers: bearer(scarce.key) });
    expect(after.status).toBe(200);
    expect(after.headers.get("x-ratelimit-burstremaining")).toBe("0");
  });

  it("header names outside the token set and control characters in values: 400 before the key", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("bad header names and values");
    const bad = fc.oneof(
      fc.tuple(nonTokenName, fieldValue(16)),
      fc.tuple(
        fc.constantFrom(
          "x-fz",
          "accept",
          "user-agent",
          "authorization",
          "x-api-key",
          "idempotency-key",
          "cookie",
        ),
        controlValue,
      ),
    );
    const arb = fc.record({
      method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD"),
      path: plausiblePath(run.marker),
      bad,
      before: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, path, bad, before }) => {
        const auth: [string, string] = ["x-api-key", roomy.key];
        const headers: [string, string][] = before ? [bad, auth] : [auth, bad];
        const sent = await run.send({ method, path, headers });
        checkRefused(sent, "bad_request");
      }),
      { numRuns: 600, seed: fuzzSeed(0x686f7332) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a bad header reached the origin");
  });

  it("`;` path parameters, raw or encoded: 400 with any key or none", { timeout: 60_000 }, async () => {
    const run = ledger.campaign("; path parameters");
    const arb = fc.record({
      method: fc.constantFrom("GET", "POST", "DELETE", "HEAD"),
      path: pathParamPath(run.marker),
      auth: credentials(roomy.key),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, path, auth }) => {
        checkRefused(await run.send({ method, path, headers: auth }), "bad_request");
      }),
      { numRuns: 300, seed: fuzzSeed(0x686f7333) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a ; path parameter reached the origin");
  });

  it("what stays allowed is proxied: HTAB and obs-text values, Content-Length: 0 on GET/HEAD", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("allowed shapes");
    const arb = fc.record({
      method: fc.constantFrom("GET", "HEAD"),
      path: plausiblePath(run.marker),
      value: fieldValue(24),
      zero: fc.constantFrom("0", "00", " 0"),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, path, value, zero }) => {
        const sent = await run.send({
          method,
          path,
          headers: [
            ["x-api-key", roomy.key],
            ["x-fz-value", `a\t${value}`],
            ["content-length", zero],
          ],
        });
        if (sent.status === 404 || sent.status === 403)
          return checkRefused(sent, "not_found", "plan_upgrade_required");
        check(sent.status === 200, "an allowed shape was not proxied", sent);
        await checkEcho(sent, roomy.caller);
      }),
      { numRuns: 200, seed: fuzzSeed(0x686f7334) },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });
});
