import { describe, expect, it } from "vitest";
import { displayParts, generateKey, hashKey, MAX_KEY_LENGTH, parseKey } from "../../workers/shared/api-keys";

describe("api key format", () => {
  it("generates live and test keys that parse back to their env", () => {
    const live = generateKey("live");
    const test = generateKey("test");
    expect(live).toMatch(/^gw_live_[0-9A-Za-z]{30}$/);
    expect(test).toMatch(/^gw_test_[0-9A-Za-z]{30}$/);
    expect(parseKey(live)).toEqual({ env: "live" });
    expect(parseKey(test)).toEqual({ env: "test" });
  });

  it("never generates the same key twice", () => {
    const keys = new Set(Array.from({ length: 1000 }, () => generateKey("live")));
    expect(keys.size).toBe(1000);
  });

  it("rejects any single-character change through the checksum", () => {
    const key = generateKey("live");
    let rejected = 0;
    const positions = key.length - "gw_live_".length;
    for (let i = "gw_live_".length; i < key.length; i++) {
      const c = key[i] === "a" ? "b" : "a";
      if (parseKey(key.slice(0, i) + c + key.slice(i + 1)) === null) rejected++;
    }
    expect(rejected).toBe(positions);
  });

  it("rejects junk, wrong prefixes, wrong lengths and oversized input", () => {
    const key = generateKey("live");
    for (const bad of [
      "",
      "gw_live_",
      key.slice(0, -1),
      `${key}x`,
      key.replace("gw_live_", "gw_prod_"),
      key.replace("gw_", "sk_"),
      `${key.slice(0, 10)}é${key.slice(11)}`,
      "x".repeat(MAX_KEY_LENGTH + 1),
      ` ${key}`,
    ]) {
      expect(parseKey(bad), bad).toBeNull();
    }
  });

  it("hashes to lower-case SHA-256 hex", async () => {
    expect(await hashKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("shows only the prefix and last 4", () => {
    const key = generateKey("test");
    const { prefix, last4 } = displayParts(key);
    expect(prefix).toBe(key.slice(0, 12));
    expect(prefix.startsWith("gw_test_")).toBe(true);
    expect(last4).toBe(key.slice(-4));
  });
});
