import { describe, expect, it } from "vitest";
import { IsolateCache } from "../../workers/shared/isolate-cache";

describe("isolate cache", () => {
  it("distinguishes not-cached from a cached miss, with separate TTLs", () => {
    const cache = new IsolateCache<string>(10, 1000, 100);
    expect(cache.get("a", 0)).toBeUndefined();
    cache.set("a", "A", 0);
    cache.set("b", null, 0);
    expect(cache.get("a", 999)).toBe("A");
    expect(cache.get("b", 99)).toBeNull();
    expect(cache.get("b", 100)).toBeUndefined();
    expect(cache.get("a", 1000)).toBeUndefined();
  });

  it("never holds more than its bound, evicting the oldest", () => {
    const cache = new IsolateCache<number>(3, 1000, 1000);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, 0);
    expect(cache.size).toBe(3);
    expect(cache.get("k6", 1)).toBeUndefined();
    expect(cache.get("k9", 1)).toBe(9);
  });
});
