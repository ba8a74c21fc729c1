import { describe, expect, it } from "vitest";
import { resendDelayMs } from "../../durable-objects/usage-spool";
import { parseUsageMessage } from "../../workers/metering/consumer";
import { FLUSH_DELAY_MS, MAX_MESSAGE_BYTES } from "../../workers/metering/producer";
import { Batcher } from "../../workers/metering/usage-batcher";
import { usageEvent } from "../support/usage-events";

/**
 * A batcher over strings with a hand-driven clock: `tick(ms)` runs the timers that are due.
 * `deliver` may be replaced (e.g. by one that never settles); `dropTimer(i)` loses the i-th timer
 * armed, as when the request that armed it is cancelled.
 */
function harness(opts: { maxBytes: number; maxDelayMs: number; rescueAfterMs?: number }) {
  let now = 0;
  let armed = 0;
  const dropped = new Set<number>();
  const timers: Array<{ at: number; fn: () => void }> = [];
  const delivered: string[][] = [];
  const h = {
    deliver: async (items: string[]) => {
      delivered.push(items);
    },
  };
  const batcher = new Batcher<string>({
    rescueAfterMs: 10_000,
    pollMs: 25,
    ...opts,
    overheadBytes: 2,
    sizeOf: (s) => s.length,
    deliver: (items) => h.deliver(items),
    schedule: (fn, ms) => {
      if (!dropped.has(armed++)) timers.push({ at: now + ms, fn });
    },
    now: () => now,
  });
  /** Advances the clock by `ms`, running every timer that falls due on the way, in time order. */
  const tick = async (ms: number) => {
    const until = now + ms;
    for (;;) {
      timers.sort((x, y) => x.at - y.at);
      const next = timers[0];
      if (!next || next.at > until) break;
      timers.shift();
      now = next.at;
      next.fn();
      // Lets delivered batches' promises settle before the next timer.
      await new Promise((r) => setTimeout(r, 0));
    }
    now = until;
    await new Promise((r) => setTimeout(r, 0));
  };
  /** Settles after `ms` on the fake clock: a delivery that takes that long. */
  const after = (ms: number) => new Promise<void>((resolve) => timers.push({ at: now + ms, fn: resolve }));
  return { batcher, delivered, tick, h, dropTimer: (i: number) => dropped.add(i), clock: () => now, after };
}

describe("usage batcher", () => {
  it("holds items until the delay since the batch's first item, then delivers them in one batch", async () => {
    const { batcher, delivered, tick } = harness({ maxBytes: 1_000, maxDelayMs: 250 });
    const settled: string[] = [];
    void batcher.add("a").then(() => settled.push("a"));
    await tick(100);
    void batcher.add("b").then(() => settled.push("b"));
    await tick(149);
    expect(delivered).toEqual([]);
    expect(batcher.buffered).toBe(2);
    await tick(1);
    expect(delivered).toEqual([["a", "b"]]);
    // Each caller resolves on its own timer, 25 ms after the batch's deadline: a looks again then,
    // and b wakes then for the first time (not 250 ms after its own item, at 350 ms).
    await tick(24);
    expect(settled).toEqual([]);
    await tick(1);
    expect(settled.sort()).toEqual(["a", "b"]);
    // The next item opens a new batch with its own deadline.
    void batcher.add("c");
    await tick(249);
    expect(delivered).toHaveLength(1);
    await tick(1);
    expect(delivered).toEqual([["a", "b"], ["c"]]);
  });

  it("packs by size: never over maxBytes (envelope and commas counted), flushing a full batch at once", async () => {
    const { batcher, delivered } = harness({ maxBytes: 2 + 3 * 11, maxDelayMs: 250 });
    for (let i = 0; i < 7; i++) void batcher.add(`item-${i}....`); // 10 bytes + a comma each
    // Three fit (2 + 3 × 11 = 35): the third fills the batch, which goes without waiting.
    expect(delivered).toEqual([
      ["item-0....", "item-1....", "item-2...."],
      ["item-3....", "item-4....", "item-5...."],
    ]);
    expect(batcher.buffered).toBe(1);
    void batcher.flush();
    expect(delivered.at(-1)).toEqual(["item-6...."]);
    for (const batch of delivered) expect(2 + batch.join(",").length).toBeLessThanOrEqual(35);
  });

  it("sends a full batch at once, and gives the next batch the time the last took to fill", async () => {
    // Three one-byte items (and their commas) fill a batch: 2 + 3 × 2 bytes.
    const { batcher, delivered, tick, clock } = harness({ maxBytes: 8, maxDelayMs: 250 });
    const settled: Record<string, number> = {};
    const add = (item: string) => void batcher.add(item).then(() => (settled[item] = clock()));
    add("a");
    await tick(10);
    add("b");
    await tick(10);
    add("c"); // the third item fills the batch 20 ms after its first
    expect(delivered).toEqual([["a", "b", "c"]]);
    await tick(10);
    add("d"); // opens the next batch at 30 ms: its deadline is 20 ms later, not 250
    await tick(10);
    add("e");
    await tick(9);
    expect(delivered).toHaveLength(1);
    await tick(1);
    expect(delivered).toEqual([
      ["a", "b", "c"],
      ["d", "e"],
    ]);
    // d and e did not fill theirs by its deadline: the load dropped, so the next batch waits 250 ms.
    await tick(50);
    add("f");
    await tick(249);
    expect(delivered).toHaveLength(2);
    await tick(1);
    expect(delivered.at(-1)).toEqual(["f"]);
    await tick(100);
    // The filler looks pollMs later; a and b wake by their batch's first deadline (250 ms) as before;
    // d and e 25 ms after theirs (50 ms), not 250 ms after their own items.
    expect(settled).toEqual({ c: 45, a: 250, b: 275, d: 75, e: 75, f: 375 });
  });

  it("has its callers look about as long after a send as deliveries take, not every pollMs", async () => {
    const { batcher, delivered, tick, h, clock, after } = harness({ maxBytes: 1_000, maxDelayMs: 250 });
    const settled: Record<string, number> = {};
    const add = (item: string) => void batcher.add(item).then(() => (settled[item] = clock()));
    h.deliver = async (items) => {
      delivered.push(items);
      await after(60); // a queue send that takes 60 ms
    };
    add("a");
    await tick(400); // a sends at 250 and, knowing no better yet, looks every 25 ms: 275, 300, 325
    expect(settled).toEqual({ a: 325 });
    add("c");
    await tick(10);
    add("d");
    await tick(400);
    // c sends at 650; d and c look a quarter longer after it than the 60 ms a send took, once, and find it done.
    expect(settled).toEqual({ a: 325, c: 725, d: 725 });
  });

  it("starts a new batch rather than overflow one", () => {
    const { batcher, delivered } = harness({ maxBytes: 30, maxDelayMs: 250 });
    void batcher.add("x".repeat(15));
    void batcher.add("y".repeat(15)); // 2 + 16 + 16 = 34 > 30
    expect(delivered).toEqual([["x".repeat(15)]]);
    expect(batcher.buffered).toBe(1);
  });

  it("flushes a batch whose first caller's timer is lost (its request cancelled) on a later caller's timer", async () => {
    const { batcher, delivered, tick, dropTimer } = harness({ maxBytes: 1_000, maxDelayMs: 250 });
    dropTimer(0);
    void batcher.add("a");
    await tick(100);
    const b = batcher.add("b");
    await tick(150);
    expect(delivered).toEqual([]);
    await tick(100); // b's own deadline: 250 ms after b
    expect(delivered).toEqual([["a", "b"]]);
    await tick(25);
    await expect(b).resolves.toBeUndefined();
  });

  it("delivers again, once, from a later caller's timer when a started delivery never settles", async () => {
    const { batcher, delivered, tick, h } = harness({
      maxBytes: 1_000,
      maxDelayMs: 250,
      rescueAfterMs: 5_000,
    });
    const normal = h.deliver;
    h.deliver = (items) => {
      delivered.push(items);
      return new Promise(() => {}); // the request that ran it died mid-send
    };
    const settled: string[] = [];
    void batcher.add("a").then(() => settled.push("a"));
    void batcher.add("b").then(() => settled.push("b"));
    await tick(250);
    expect(delivered).toEqual([["a", "b"]]);
    h.deliver = normal;
    // The first caller to look 5 s after the send started redoes it.
    await tick(4_999);
    expect(delivered).toHaveLength(1);
    await tick(1);
    expect(delivered).toEqual([
      ["a", "b"],
      ["a", "b"],
    ]);
    await tick(25);
    expect(settled).toEqual(["a", "b"]);
    await tick(20_000);
    expect(delivered).toHaveLength(2);
  });

  it("settles callers even when delivery rejects", async () => {
    const { batcher, tick, h } = harness({ maxBytes: 100, maxDelayMs: 0 });
    h.deliver = () => Promise.reject(new Error("boom"));
    const settled = batcher.add("a");
    await tick(25);
    await expect(settled).resolves.toBeUndefined();
  });

  it("packs a bench-sized load into ≤ 0.05 messages per event at the production settings", async () => {
    // Ids as long as real ones: the size of an event is what this is about.
    const event = usageEvent({
      tenantId: "ten_01jabcdefghjkmnpqrstvwxyz0",
      keyId: "key_01jabcdefghjkmnpqrstvwxyz0",
      bytesIn: 0,
      bytesOut: 52,
      latencyMs: 3,
    });
    const size = JSON.stringify(event).length;
    const perMessage = Math.floor((MAX_MESSAGE_BYTES - 19) / (size + 1));
    expect(perMessage).toBeGreaterThanOrEqual(20);
    // 850 req/s (the bench's gateway rate) for one flush delay fills a message by time, not by size.
    expect((850 * FLUSH_DELAY_MS) / 1000).toBeGreaterThanOrEqual(20);
  });
});

describe("usage message parsing (consumer)", () => {
  const event = usageEvent();

  it("takes an envelope apart: valid events kept, invalid ones rejected with their index and reason", () => {
    const parsed = parseUsageMessage({ v: 2, events: [event, { ...event, units: -1 }, "x"] });
    expect(parsed.events).toEqual([event]);
    expect(parsed.rejected).toEqual([
      {
        reason: "invalid usage event [1]: units: Too small: expected number to be >=0",
        event: { ...event, units: -1 },
      },
      { reason: "invalid usage event [2]: : Invalid input: expected object, received string", event: "x" },
    ]);
  });

  it("still accepts a legacy single-event message, and rejects a broken envelope as a whole", () => {
    expect(parseUsageMessage(event)).toEqual({ events: [event], rejected: [] });
    expect(parseUsageMessage({ v: 3, events: [event] })).toEqual({
      events: [],
      rejected: [
        { reason: "invalid usage envelope: v: Invalid input: expected 2", event: { v: 3, events: [event] } },
      ],
    });
  });
});

describe("usage spool backoff", () => {
  it("doubles from 1 s and caps at a minute", () => {
    expect([0, 1, 2, 3, 5, 6, 7, 30].map(resendDelayMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });
});
