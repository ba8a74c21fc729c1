/**
 * Fuzz: Idempotency-Key on requests with a valid key. Malformed keys are a 400 before the origin;
 * well-formed ones (bare, Stripe style, or the draft's quoted sf-string) proceed once, replay
 * byte for byte in either form, refuse a different request with 422, and N concurrent identical
 * requests reach the origin once.
 *
 * What the runtime does to an `Idempotency-Key` before the Worker sees it (it is a header value):
 * CR, LF and NUL throw in `Headers` (not generated); leading and trailing SP/HTAB are trimmed, so
 * `" k"` and `"k"` are the same key to the gateway; non-ASCII is sent as UTF-8 bytes. A key the
 * Worker sees with other control characters is generated here (400 before the origin).
 */
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import { base62, fieldValue } from "../support/fuzz-arbs";
import {
  type Caller,
  check,
  checkEcho,
  checkOriginCalls,
  checkRefused,
  checkResponse,
  FUZZ_PLAN,
  fuzzSeed,
  Ledger,
  type Sent,
} from "../support/fuzz-kit";
import { seedTenant } from "../support/gateway";

const ledger = new Ledger("idempotency.test.ts");
let apiKey = "";
let caller: Caller;

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  apiKey = t.key;
  caller = { tenantId: t.tenantId, keyId: t.keyId, env: "live" };
});

/** Printable ASCII without DQUOTE and backslash: a key every reading of the spec accepts. */
const TOKEN_CHARS = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).filter(
  (c) => c !== '"' && c !== "\\",
);
const token = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: min, maxLength: max });

type Verdict = "valid" | "invalid" | "either";

/** A generated Idempotency-Key header (one or more values) and what the spec says of it. */
interface KeyCase {
  kind: string;
  values: string[];
  verdict: Verdict;
  /** For valid keys: the key itself, to re-send in the other form. */
  key?: string;
  quoted?: boolean;
}

const keyCase: fc.Arbitrary<KeyCase> = fc
  .oneof(
    token(1, 64).map((k) => ({
      kind: "bare",
      values: [k],
      verdict: "valid" as Verdict,
      key: k,
      quoted: false,
    })),
    token(1, 64).map((k) => ({
      kind: "quoted",
      values: [`"${k}"`],
      verdict: "valid" as Verdict,
      key: k,
      quoted: true,
    })),
    token(256, 600).map((k) => ({ kind: "too long", values: [k], verdict: "invalid" as Verdict })),
    token(254, 254).map((k) => ({
      kind: "too long, quoted",
      values: [`"${k}xx"`],
      verdict: "invalid" as Verdict,
    })),
    fc.constantFrom("", " ", "\t", '""', '"', '" "').map((v) => ({
      kind: "empty",
      values: [v],
      verdict: (v === '" "' ? "either" : "invalid") as Verdict,
    })),
    fc
      .tuple(token(0, 8), fc.constantFrom("\u0001", "\u001f", "\u007f", "\t", "\u000b"), token(0, 8))
      .map(([a, c, b]) => ({ kind: "control", values: [`x${a}${c}${b}x`], verdict: "invalid" as Verdict })),
    fc
      .tuple(token(0, 8), fc.constantFrom("é", "😀", "\u00ff", "\u0430", "\u200b", "\uff21"), token(0, 8))
      .map(([a, c, b]) => ({ kind: "non-ASCII", values: [`x${a}${c}${b}x`], verdict: "invalid" as Verdict })),
    fc.tuple(token(1, 8), fc.constantFrom('"', "'"), token(1, 8)).map(([a, q, b]) => ({
      kind: "stray quote",
      values: [a.length % 2 === 0 ? `${q}${a}${b}` : `${a}${b}${q}`],
    })),
    // Appended twice, the header reads "a, b": neither a token nor an sf-string.
    fc
      .tuple(token(1, 16), token(1, 16))
      .map(([a, b]) => ({ kind: "two values", values: [a, b], verdict: "invalid" as Verdict })),
    token(1, 16).map((a) => ({ kind: "same value twice", values: [a, a], verdict: "invalid" as Verdict })),
    fc
      .tuple(token(1, 16), fc.constantFrom(";p=1", ";p", ", x", " x", ";q=?0"))
      .map(([a, p]) => ({ kind: "parameters or list", values: [`"${a}"${p}`] })),
    fieldValue(40).map((v) => ({ kind: "any field value", values: [v] })),
  )
  .map((c: Partial<KeyCase> & { kind: string; values: string[] }) => ({
    verdict: "either" as Verdict,
    ...c,
  }));

/** Makes a valid key unique to this request (so runs never collide) while keeping it valid. */
function uniqueKey(c: KeyCase, n: number): KeyCase {
  if (c.verdict !== "valid" || c.key === undefined) return c;
  const key = `${c.key}-${n.toString(36)}`;
  return { ...c, key, values: [c.quoted ? `"${key}"` : key] };
}

const post = (path: string, values: string[], body: string, method = "POST") => ({
  method,
  path,
  headers: [
    ["x-api-key", apiKey],
    ["content-type", "application/json"],
    ...values.map((v): [string, string] => ["idempotency-key", v]),
  ] as [string, string][],
  body: method === "GET" || method === "HEAD" ? null : body,
});

/** Replays can race the recording of the first response: a 409 means "still recording", retry. */
async function replay(send: () => Promise<Sent>): Promise<Sent> {
  for (let attempt = 0; ; attempt++) {
    const sent = await send();
    if (sent.status !== 409 || attempt >= 20) return sent;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("fuzz: Idempotency-Key", () => {
  it("refuses malformed keys with 400 before the origin; honours well-formed ones once, in either form", {
    timeout: 90_000,
  }, async () => {
    const run = ledger.campaign("hostile Idempotency-Key values");
    const arb = fc
      .record({
        c: keyCase,
        method: fc.constantFrom("POST", "POST", "PUT", "PATCH", "DELETE", "GET"),
        payload: fc.json({ maxDepth: 2 }),
      })
      // On GET the header is forwarded as is; control characters cannot arrive over HTTP, and an
      // origin's parser refuses them with its own bare 400 (see fieldValue in fuzz-arbs).
      .filter(({ c, method }) => !(method === "GET" && c.kind === "control"));
    await fc.assert(
      fc.asyncProperty(arb, async ({ c: generated, method, payload }) => {
        const n = run.sent;
        const c = uniqueKey(generated, n);
        const path = `/v1/${run.marker}/${n}`;
        // Only a request that will be replayed must be recorded before the next one is sent.
        const replayed = method !== "GET" && c.verdict === "valid";
        const first = await run.send(post(path, c.values, payload, method), {
          settle: replayed ? true : "deferred",
        });
        checkResponse(first);
        if (method === "GET") {
          // The header only means something on POST/PUT/PATCH/DELETE: ignored, or refused.
          if (!first.fromOrigin) checkRefused(first, "bad_request");
          return;
        }
        if (c.verdict === "invalid") return checkRefused(first, "bad_request");
        if (c.verdict === "either" && !first.fromOrigin) return checkRefused(first, "bad_request");
        check(first.status === 200, `a well-formed key (${c.kind}) did not proceed`, first);
        await checkEcho(first, caller);
        if (c.verdict !== "valid" || c.key === undefined) return;

        // The same request again, with the key in the other form: replayed, not re-run.
        const other = c.quoted ? c.key : `"${c.key}"`;
        const again = await replay(() =>
          run.send(post(path, [other], payload, method), { settle: "deferred" }),
        );
        check(
          again.headers.get("idempotent-replayed") === "true",
          "the same request was not replayed",
          again,
        );
        check(again.status === first.status && again.body === first.body, "the replay differs", again);
        // The same key for a different request: 422.
        const changed = await run.send(post(path, c.values, `${payload} `, method), { settle: "deferred" });
        checkRefused(changed, "idempotency_key_mismatch");
      }),
      { numRuns: 400, seed: fuzzSeed(0x69646d31) },
    );
    await run.settled();
    // Every request reached the origin at most once (replays and refusals never do).
    const calls = await checkOriginCalls(run.marker);
    const perPath = new Map<string, number>();
    for (const call of calls) perPath.set(call.path, (perPath.get(call.path) ?? 0) + 1);
    for (const [path, count] of perPath) check(count === 1, `${path} reached the origin ${count} times`);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("sends N concurrent identical requests with a generated key to the origin once", {
    timeout: 60_000,
  }, async () => {
    const run = ledger.campaign("concurrent duplicates");
    const arb = fc.record({
      key: token(1, 48),
      quoted: fc.boolean(),
      n: fc.integer({ min: 2, max: 8 }),
      payload: fc.json({ maxDepth: 1 }),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ key, quoted, n, payload }) => {
        const unique = `${key}-${run.sent.toString(36)}`;
        const value = quoted ? `"${unique}"` : unique;
        const path = `/v1/${run.marker}/c${run.sent}`;
        const responses = await Promise.all(
          Array.from({ length: n }, () => run.send(post(path, [value], payload), { settle: "deferred" })),
        );
        let firsts = 0;
        for (const sent of responses) {
          checkResponse(sent);
          if (sent.status === 409) {
            checkRefused(sent, "idempotency_key_in_use");
          } else {
            check(sent.status === 200, "neither proceeded, replayed nor 409", sent);
            if (sent.headers.get("idempotent-replayed") !== "true") firsts++;
          }
        }
        check(firsts === 1, `${firsts} of ${n} concurrent requests ran (expected 1): ${path}`);
      }),
      { numRuns: 40, seed: fuzzSeed(0x69646d32) },
    );
    await run.settled();
    const calls = await checkOriginCalls(run.marker);
    const perPath = new Map<string, number>();
    for (const call of calls) perPath.set(call.path, (perPath.get(call.path) ?? 0) + 1);
    for (const [path, count] of perPath) check(count === 1, `${path} reached the origin ${count} times`);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });

  it("accepts every key in the draft's sf-string form (spaces, escaped quotes and backslashes)", {
    timeout: 60_000,
  }, async () => {
    // draft-ietf-httpapi-idempotency-key-header: the value is an RFC 8941 String; its characters
    // are %x20-7E, with `"` and `\` escaped. DESIGN.md: "Accept the draft's quoted form".
    const run = ledger.campaign("sf-string keys");
    const sfChar = fc.oneof(fc.constantFrom(...TOKEN_CHARS), fc.constantFrom(" ", '\\"', "\\\\"));
    const arb = fc.record({ inner: fc.array(sfChar, { minLength: 1, maxLength: 40 }), tail: base62(1, 6) });
    await fc.assert(
      fc.asyncProperty(arb, async ({ inner, tail }) => {
        const value = `"${inner.join("")}-${tail}${run.sent}"`;
        const sent = await run.send(post(`/v1/${run.marker}/sf${run.sent}`, [value], "{}"), {
          settle: "deferred",
        });
        checkResponse(sent);
        check(sent.fromOrigin && sent.status === 200, `the sf-string key ${value} was refused`, sent);
      }),
      { numRuns: 60, seed: fuzzSeed(0x69646d33) },
    );
    await run.settled();
  });
});
