import { describe, expect, it } from "vitest";
import { Slots } from "../../durable-objects/concurrency";

const slot = { route: "/v1/", max: 2, leaseMs: 1_000 };

describe("in-flight slots", () => {
  it("grants slots up to the max, per route", () => {
    const slots = new Slots();
    expect(slots.acquire(slot, "a", 0)).toBe(true);
    expect(slots.acquire(slot, "b", 0)).toBe(true);
    expect(slots.acquire(slot, "c", 0)).toBe(false);
    expect(slots.held("/v1/", 0)).toBe(2);
    expect(slots.acquire({ ...slot, route: "/v2/" }, "d", 0)).toBe(true);
    // A smaller share (the limit fell) refuses even below the old max.
    expect(slots.acquire({ ...slot, max: 1 }, "e", 0)).toBe(false);
  });

  it("a released slot makes room, once", () => {
    const slots = new Slots();
    slots.acquire(slot, "a", 0);
    slots.acquire(slot, "b", 0);
    expect(slots.release("/v1/", "a")).toBe(true);
    expect(slots.release("/v1/", "a")).toBe(false);
    expect(slots.release("/v2/", "b")).toBe(false);
    expect(slots.acquire(slot, "c", 0)).toBe(true);
    expect(slots.held("/v1/", 0)).toBe(2);
  });

  it("a slot never released lapses at the end of its lease", () => {
    const slots = new Slots();
    slots.acquire(slot, "a", 0);
    slots.acquire(slot, "b", 500);
    expect(slots.acquire(slot, "c", 999)).toBe(false);
    expect(slots.acquire(slot, "c", 1_000)).toBe(true);
    expect(slots.held("/v1/", 1_500)).toBe(1);
    expect(slots.release("/v1/", "a")).toBe(false);
  });
});
