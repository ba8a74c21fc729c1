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
  return { batcher, delivered, tick, h, dropTimer: (i: number) => dropped.add(i) };
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
    // Each caller resolves on its own timer: a polls 25 ms later, b at its own deadline (350 ms).
    await tick(25);
    expect(settled).toEqual(["a"]);
    await tick(75);
    expect(settled).toEqual(["a", "b"]);
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
