/**
 * Fuzz: API keys. Junk key material never authenticates and never reaches the origin; a valid key
 * in any RFC 9110 framing always does; a valid key under another scheme or header never does.
 *
 * What the runtime does to key material before the Worker sees it (it travels in a header value):
 * CR, LF and NUL throw in `Headers` (the generators drop such material, `headerSafe`); leading and
 * trailing SP/HTAB are trimmed (so junk glued to a key is never whitespace, or the runtime would
 * repair the key); non-ASCII lookalikes arrive as their UTF-8 bytes. Keys with raw CR/LF/NUL are
 * refused by workerd's parser on the wire (test/wire/hostile-wire.ts) before any Worker code runs.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { checksum, parseKey } from "../../workers/shared/api-keys";
import {
  base62,
  framing,
  invalidKeyMaterial,
  method,
  spoofedRequestId,
  wrongScheme,
} from "../support/fuzz-arbs";
import {
  type Caller,
  check,
  checkEcho,
  checkKeyRefused,
  checkOriginCalls,
  FUZZ_PLAN,
  fuzzSeed,
  Ledger,
} from "../support/fuzz-kit";
import { createKey, seedTenant } from "../support/gateway";

const ledger = new Ledger("keys.test.ts");
const keys: { key: string; caller: Caller }[] = [];

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  const test = await createKey(t.tenantId, { env: "test" });
  const member = await createKey(t.tenantId, { env: "live", role: "member" });
  keys.push(
    { key: t.key, caller: { tenantId: t.tenantId, keyId: t.keyId, env: "live" } },
    { key: test.key, caller: { tenantId: t.tenantId, keyId: test.id, env: "test" } },
    { key: member.key, caller: { tenantId: t.tenantId, keyId: member.id, env: "live" } },
  );
});

describe("fuzz: API keys", () => {
  /**
   * The generators import the gateway's checksum (workers/shared/api-keys.ts) to build "well-formed,
   * never issued" keys. So that import can't confirm itself, it is pinned to answers computed
   * elsewhere: 0xCBF43926 is CRC-32's published check value for "123456789" (3jZRME in 6 base62
   * digits), and the key's last 6 digits were computed with Node's zlib.crc32.
   */
  it("the checksum the generators use is CRC-32 in base62 (known answers)", () => {
    expect(checksum("123456789")).toBe("3jZRME");
    expect(checksum("gw_live_0123456789ABCDEFGHIJKLMN")).toBe("2nJQC4");
    expect(parseKey("gw_live_0123456789ABCDEFGHIJKLMN2nJQC4")).toEqual({ env: "live" });
    expect(parseKey("gw_live_0123456789ABCDEFGHIJKLMN2nJQC5")).toBeNull();
    for (const { key } of keys) expect(parseKey(key)).not.toBeNull();
  });

  it("refuses junk key material in any framing with a 401 problem, never calling the origin", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("junk key material");
    const arb = fc.record({
      material: invalidKeyMaterial(keys.map((k) => k.key)),
      frame: framing,
      method,
      tail: base62(0, 8),
      spoof: fc.option(spoofedRequestId, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ material, frame, method, tail, spoof }) => {
        const headers = frame.headers(material.key);
        if (spoof !== undefined) headers.push(["x-request-id", spoof]);
        const sent = await run.send({ method, path: `/v1/${run.marker}/${tail}`, headers });
        checkKeyRefused(sent);
        check(sent.headers.get("x-request-id") !== spoof, "echoed the client's X-Request-ID", sent);
      }),
      { numRuns: 3000, seed: fuzzSeed(0x6b657931) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "junk keys reached the origin");
  });

  it("authenticates a valid key in every legal framing; refuses the rest cleanly", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("valid key, any framing");
    const arb = fc.record({
      which: fc.nat({ max: keys.length - 1 }),
      frame: framing,
      method: fc.constantFrom("GET", "POST", "DELETE", "OPTIONS"),
      tail: base62(1, 8),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, frame, method, tail }) => {
        const { key, caller } = keys[which] as (typeof keys)[number];
        const sent = await run.send({
          method,
          path: `/v1/${run.marker}/${tail}`,
          headers: frame.headers(key),
        });
        if (frame.legal || sent.fromOrigin) {
          check(sent.status === 200, `valid key in framing ${frame.label} was refused`, sent);
          await checkEcho(sent, caller);
        } else {
          checkKeyRefused(sent);
        }
      }),
      { numRuns: 400, seed: fuzzSeed(0x6b657932) },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("refuses a valid key under another scheme or header", { timeout: 30_000 }, async () => {
    const run = ledger.campaign("valid key, wrong scheme or header");
    const arb = fc.record({
      which: fc.nat({ max: keys.length - 1 }),
      scheme: wrongScheme,
      tail: base62(0, 8),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ which, scheme, tail }) => {
        const { key } = keys[which] as (typeof keys)[number];
        const sent = await run.send({
          method: "GET",
          path: `/v1/${run.marker}/${tail}`,
          headers: scheme.headers(key),
        });
        checkKeyRefused(sent);
      }),
      { numRuns: 300, seed: fuzzSeed(0x6b657933) },
    );
    check((await checkOriginCalls(run.marker)).length === 0, "a misplaced key reached the origin");
  });
});
