import { describe, expect, it } from "vitest";
import {
  decide,
  fingerprint,
  type IdempotencyRecord,
  parseIdempotencyKey,
} from "../../durable-objects/idempotency";

const response = {
  status: 201,
  headers: [["content-type", "application/json"]] as [string, string][],
  body: new ArrayBuffer(2),
};
const record = (over: Partial<IdempotencyRecord>): IdempotencyRecord => ({
  fingerprint: "fp",
  state: "in_flight",
  leaseUntil: 1000,
  expiresAt: 10_000,
  response: null,
  ...over,
});

describe("idempotency state machine", () => {
  it("lets the first request through", () => {
    expect(decide(null, "fp", 0)).toEqual({ kind: "new" });
  });

  it("answers 409 while in flight, and lets a retry take over an abandoned lease", () => {
    expect(decide(record({}), "fp", 999)).toEqual({ kind: "in_flight" });
    expect(decide(record({}), "fp", 1000)).toEqual({ kind: "new" });
  });

  it("replays a completed request with the same fingerprint", () => {
    expect(decide(record({ state: "done", response }), "fp", 5000)).toEqual({ kind: "replay", response });
  });

  it("refuses a different request under the same key, in flight or done", () => {
    expect(decide(record({}), "other", 0)).toEqual({ kind: "mismatch" });
    expect(decide(record({ state: "done", response }), "other", 0)).toEqual({ kind: "mismatch" });
  });

  it("forgets a record after its retention", () => {
    expect(decide(record({ state: "done", response }), "other", 10_000)).toEqual({ kind: "new" });
  });

  it("parses the quoted structured-field form and the bare form", () => {
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      "8e03978e-40d5-43e8-bc93-6894a57f9324",
    );
    expect(parseIdempotencyKey("order-123_v2:retry")).toBe("order-123_v2:retry");
    // The sf-string form may hold spaces and escaped quotes and backslashes.
    expect(parseIdempotencyKey('"a b"')).toBe("a b");
    expect(parseIdempotencyKey('"a\\"b\\\\c"')).toBe('a"b\\c');
    for (const bad of [
      "",
      '""',
      '"unterminated',
      'a"b',
      "has space",
      "é",
      "x".repeat(256),
      '"a"b"',
      '"a\\xb"',
      '"tab\there"',
      '" "',
      "\u0000",
    ]) {
      expect(parseIdempotencyKey(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it("fingerprints method, path with query, and body", async () => {
    const body = new TextEncoder().encode('{"a":1}').buffer as ArrayBuffer;
    const base = await fingerprint("POST", "/v1/orders?x=1", body);
    expect(await fingerprint("post", "/v1/orders?x=1", body)).toBe(base);
    expect(await fingerprint("PUT", "/v1/orders?x=1", body)).not.toBe(base);
    expect(await fingerprint("POST", "/v1/orders?x=2", body)).not.toBe(base);
    expect(
      await fingerprint("POST", "/v1/orders?x=1", new TextEncoder().encode('{"a":2}').buffer as ArrayBuffer),
    ).not.toBe(base);
  });
});
