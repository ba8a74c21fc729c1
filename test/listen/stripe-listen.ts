/**
 * `stripe listen` for the local stack (dev/stripe-listen.ts), over real HTTP on both sides
 * (node:test, run by `npm run test:listen`, part of `npm test`; Node, not workerd: workerd cannot
 * listen on a port). Each test has its own events source speaking Stripe's `GET /v1/events` list
 * format (test/support/stripe-events-source.ts) and its own endpoint that verifies every delivery
 * with the `stripe` package's `constructEventAsync` as the Worker does
 * (test/support/webhook-receiver.ts). Polling is driven by `flush()` (the poll timer is an hour,
 * except in the one test of the timer) and waits between retries go through a recording `sleep`
 * that returns at once: nothing waits on the real clock.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import {
  backoffMs,
  DEFAULT_RETRY,
  type StripeListen,
  type StripeListenOptions,
  startStripeListen,
} from "../../dev/stripe-listen";
import { startListenControl } from "../../dev/stripe-listen-control";
import { type EventsSource, startEventsSource } from "../support/stripe-events-source";
import { startWebhookReceiver, verify, type WebhookReceiver } from "../support/webhook-receiver";

const SECRET = "whsec_test_listen_secret";
const HOUR = 3_600_000;

interface Rig {
  source: EventsSource;
  receiver: WebhookReceiver;
  listen: StripeListen;
  lines: string[];
  /** The waits asked for between attempts, in ms. */
  sleeps: number[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A source (with `history` events made before the forwarder starts), an endpoint and a forwarder. */
async function rig(options: Partial<StripeListenOptions> = {}, history: string[] = []): Promise<Rig> {
  const source = await startEventsSource();
  cleanups.push(source.stop);
  for (const type of history) source.add(type);
  const receiver = await startWebhookReceiver(SECRET);
  cleanups.push(receiver.stop);
  const lines: string[] = [];
  const sleeps: number[] = [];
  const listen = await startStripeListen({
    apiUrl: source.url,
    apiKey: source.key,
    forwardTo: receiver.url,
    secret: SECRET,
    pollMs: HOUR,
    log: (line) => lines.push(line),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
  cleanups.push(listen.stop);
  return { source, receiver, listen, lines, sleeps };
}

/** Adds events of these types and returns their ids. */
const add = (source: EventsSource, ...types: string[]) => types.map((type) => source.add(type).id);

/** The received event ids as indexes into `ids` (so two runs with different ids compare). */
const positions = (received: string[], ids: string[]) => received.map((id) => ids.indexOf(id));

describe("stripe listen: delivery", { timeout: 10_000 }, () => {
  it("delivers every event made after it started once, oldest first, across pages; none from before", async () => {
    const { source, receiver, listen } = await rig({}, ["invoice.created", "invoice.paid"]);
    const types = Array.from({ length: 105 }, (_, i) => (i % 2 ? "invoice.paid" : "invoice.finalized"));
    const ids = add(source, ...types);
    await listen.flush();
    assert.deepEqual(receiver.accepted(), ids);
    assert.equal(receiver.received.length, 105, "nothing from before the start, nothing twice");
    assert.ok(source.reads() >= 3, "105 new events take two pages after the start's read");
    assert.ok(listen.outcomes.every((o) => o.result === "delivered" && o.attempts === 1 && o.status === 200));
  });

  it("starts from now on an account with no events yet, and goes on from the newest it saw", async () => {
    const { source, receiver, listen } = await rig();
    const first = add(source, "customer.created", "invoice.created");
    await listen.flush();
    const second = add(source, "invoice.paid");
    await listen.flush();
    await listen.flush();
    assert.deepEqual(receiver.accepted(), [...first, ...second]);
  });

  it("posts the event's exact JSON, signed over those bytes, with Stripe's headers", async () => {
    const { source, receiver, listen } = await rig();
    const event = source.add("invoice.paid", { id: "in_1", object: "invoice", amount_paid: 1234 });
    await listen.flush();
    const [got] = receiver.received;
    assert.ok(got);
    assert.deepEqual(JSON.parse(got.raw), event);
    assert.equal(got.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(got.headers["user-agent"], "Stripe/1.0 (+https://stripe.com/docs/webhooks)");
    const signature = String(got.headers["stripe-signature"]);
    const t = Number(/^t=(\d+),v1=[0-9a-f]{64}$/.exec(signature)?.[1]);
    assert.ok(Math.abs(t - Date.now() / 1000) < 60, "signed at the attempt, not at the event's creation");
    assert.equal((await verify(got.raw, signature, SECRET)).id, event.id);
    const tampered = got.raw.replace("1234", "9234");
    await assert.rejects(verify(tampered, signature, SECRET), /No signatures found matching/);
    await assert.rejects(verify(got.raw, signature, "whsec_another"), /No signatures found matching/);
  });

  it("makes a fresh whsec_ secret when none is given", async () => {
    const { source, receiver } = await rig();
    const a = await startStripeListen({ apiUrl: source.url, apiKey: source.key, forwardTo: receiver.url });
    const b = await startStripeListen({ apiUrl: source.url, apiKey: source.key, forwardTo: receiver.url });
    await Promise.all([a.stop(), b.stop()]);
    assert.match(a.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.secret, b.secret);
  });

  it("prints its secret when ready, then a line per delivery, as stripe listen does", async () => {
    const { source, receiver, listen, lines } = await rig();
    const [id] = add(source, "invoice.paid");
    await listen.flush();
    const ready = `Ready! Forwarding ${source.url} events to ${receiver.url}; signing secret ${SECRET}`;
    assert.ok(lines.shift()?.endsWith(ready));
    assert.match(
      lines[0] ?? "",
      new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +--> invoice\\.paid \\[${id}\\]$`),
    );
    assert.ok(lines[1]?.endsWith(`<--  [200] POST ${receiver.url} [${id}]`), lines[1]);
  });

  it("reads the event list every pollMs without being asked", async () => {
    const { source, receiver } = await rig({ pollMs: 20 });
    const ids = add(source, "invoice.paid", "invoice.finalized");
    await receiver.arrivals(2);
    assert.deepEqual(receiver.accepted(), ids);
  });

  it("starts while the events source is down, says so once, and delivers what is made after", async () => {
    const source = await startEventsSource();
    cleanups.push(source.stop);
    source.down(true);
    const receiver = await startWebhookReceiver(SECRET);
    cleanups.push(receiver.stop);
    const lines: string[] = [];
    const listen = await startStripeListen({
      apiUrl: source.url,
      apiKey: source.key,
      forwardTo: receiver.url,
      secret: SECRET,
      pollMs: HOUR,
      log: (line) => lines.push(line),
    });
    cleanups.push(listen.stop);
    const ids = add(source, "invoice.paid");
    await listen.flush();
    await listen.flush();
    assert.equal(receiver.received.length, 0);
    assert.equal(lines.filter((l) => l.includes("cannot read events")).length, 1, lines.join("\n"));
    source.down(false);
    await listen.flush();
    assert.deepEqual(receiver.accepted(), ids);
  });
});

describe("stripe listen: retries", { timeout: 10_000 }, () => {
  it("retries a non-2xx answer with doubling waits; the next event goes on meanwhile", async () => {
    const clock = manualSleep();
    const { source, receiver, listen } = await rig({ sleep: clock.sleep });
    const ids = add(source, "invoice.paid", "invoice.finalized");
    receiver.answer(ids[0] as string, 500, 503);
    const flushed = listen.flush();
    await clock.waits(1);
    await receiver.arrivals(2);
    assert.deepEqual(receiver.accepted(), [ids[1]], "the second event did not wait for the first's retry");
    clock.wake();
    await clock.waits(2);
    clock.wake();
    await flushed;
    assert.deepEqual(
      receiver.received.map((r) => [r.eventId, r.status]),
      [
        [ids[0], 500],
        [ids[1], 200],
        [ids[0], 503],
        [ids[0], 200],
      ],
    );
    assert.deepEqual(clock.asked, [DEFAULT_RETRY.baseMs, DEFAULT_RETRY.baseMs * 2]);
    assert.deepEqual(outcomeOf(listen, ids[0]), ["delivered", 3, 200]);
  });

  it("gives up after maxAttempts with waits capped; the other event is delivered", async () => {
    const retry = { baseMs: 100, capMs: 1_000, maxAttempts: 8 };
    const { source, receiver, listen, sleeps, lines } = await rig({ retry });
    const ids = add(source, "invoice.paid", "invoice.finalized");
    receiver.answer(ids[0] as string, ...Array(8).fill(500));
    await listen.flush();
    assert.deepEqual(sleeps, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    assert.deepEqual(outcomeOf(listen, ids[0]), ["gave_up", 8, 500]);
    assert.deepEqual(outcomeOf(listen, ids[1]), ["delivered", 1, 200]);
    assert.equal(receiver.received.filter((r) => r.eventId === ids[0]).length, 8);
    assert.ok(lines.some((l) => l.includes(`[${ids[0]}]`) && l.endsWith("gave up after 8 attempts")));
  });

  it("computes the default backoff: 0.5 s doubling, at most 30 s", () => {
    assert.deepEqual(
      [1, 2, 3, 7, 8, 20].map((n) => backoffMs(n, DEFAULT_RETRY)),
      [500, 1_000, 2_000, 30_000, 30_000, 30_000],
    );
  });

  it("stop() cancels a retry waiting out its backoff and records it as stopped", async () => {
    const clock = manualSleep();
    const { source, receiver, listen } = await rig({ sleep: clock.sleep });
    const [id] = add(source, "invoice.paid");
    receiver.answer(id as string, 500);
    const flushed = listen.flush();
    await clock.waits(1);
    await listen.stop();
    await flushed;
    assert.deepEqual(outcomeOf(listen, id), ["stopped", 1, 500]);
    assert.equal(receiver.received.length, 1);
  });

  it("stop() waits for the delivery in flight, retries nothing, and delivers nothing after", async () => {
    const { source, receiver, listen } = await rig({ sleep: manualSleep().sleep });
    const release = receiver.hold();
    const ids = add(source, "invoice.paid", "invoice.finalized");
    receiver.answer(ids[0] as string, 500);
    const flushing = listen.flush();
    await receiver.arrivals(1);
    let stopped = false;
    const stopping = listen.stop().then(() => {
      stopped = true;
    });
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(stopped, false, "stop() waits while the endpoint has not answered");
    release();
    await stopping;
    await flushing;
    assert.deepEqual(
      listen.outcomes.map((o) => [o.eventId, o.result, o.attempts]),
      [[ids[0], "stopped", 1]],
    );
    add(source, "invoice.created");
    await listen.flush();
    assert.equal(receiver.received.length, 1);
  });
});

/** Waits between attempts that end only when the test wakes them (or `stop()` aborts them). */
function manualSleep() {
  const asked: number[] = [];
  const pending: Array<() => void> = [];
  const watchers: Array<() => void> = [];
  return {
    asked,
    sleep(ms: number, signal: AbortSignal): Promise<void> {
      return new Promise<void>((resolve) => {
        asked.push(ms);
        pending.push(resolve);
        // Ends a turn of the event loop after the abort, as a timer-based wait may: stop() must wait for it.
        signal.addEventListener("abort", () => setImmediate(resolve), { once: true });
        for (const watcher of watchers.splice(0)) watcher();
      });
    },
    /** Resolves once `count` waits have been asked for in all. */
    async waits(count: number): Promise<void> {
      while (asked.length < count) await new Promise<void>((resolve) => watchers.push(resolve));
    },
    wake(): void {
      for (const resolve of pending.splice(0)) resolve();
    },
  };
}

/** [result, attempts, status] of the first delivery of an event. */
function outcomeOf(listen: StripeListen, eventId: string | undefined) {
  const o = listen.outcomes.find((x) => x.eventId === eventId);
  return o && [o.result, o.attempts, o.status];
}

describe("stripe listen: faults", { timeout: 10_000 }, () => {
  it("duplicate: delivers the chosen type times times, back to back, identical bytes", async () => {
    const { source, receiver, listen } = await rig({
      faults: { duplicate: { types: ["invoice.paid"], times: 3 } },
    });
    const ids = add(source, "invoice.created", "invoice.paid", "invoice.finalized");
    await listen.flush();
    assert.deepEqual(positions(receiver.accepted(), ids), [0, 1, 1, 1, 2]);
    const copies = receiver.received.filter((r) => r.eventId === ids[1]).map((r) => r.raw);
    assert.equal(new Set(copies).size, 1);
  });

  it("duplicate at a rate: the same seed picks the same events, another seed others", async () => {
    const types = Array.from({ length: 24 }, () => "invoice.paid");
    const run = async (seed: number) => {
      const { source, receiver, listen } = await rig({ faults: { seed, duplicate: { rate: 0.5 } } });
      const ids = add(source, ...types);
      await listen.flush();
      return positions(receiver.accepted(), ids);
    };
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(a.length > 24 && a.length < 48, `about half duplicated: ${a.length - 24}`);
  });

  it("reorder reverse: each window of K comes reversed; a partial window goes out on flush", async () => {
    const { source, receiver, listen } = await rig({ faults: { reorder: { window: 3 } } });
    const ids = add(source, ...Array(7).fill("invoice.paid"));
    await listen.flush();
    assert.deepEqual(positions(receiver.accepted(), ids), [2, 1, 0, 5, 4, 3, 6]);
  });

  it("reorder shuffle: a seeded permutation of the window, the same every run", async () => {
    const run = async () => {
      const faults = { seed: 3, reorder: { window: 6, order: "shuffle" as const } };
      const { source, receiver, listen } = await rig({ faults });
      const ids = add(source, ...Array(6).fill("invoice.paid"));
      await listen.flush();
      return positions(receiver.accepted(), ids);
    };
    const [a, b] = [await run(), await run()];
    assert.deepEqual(a, b);
    assert.deepEqual([...a].sort(), [0, 1, 2, 3, 4, 5]);
    assert.notDeepEqual(a, [0, 1, 2, 3, 4, 5]);
  });

  it("fail: the first N attempts fail locally (the endpoint never sees them), then it is delivered", async () => {
    const { source, receiver, listen, sleeps, lines } = await rig({
      faults: { fail: { types: ["invoice.payment_failed"], attempts: 2 } },
    });
    const ids = add(source, "invoice.payment_failed", "invoice.paid");
    await listen.flush();
    assert.deepEqual(receiver.accepted().sort(), [...ids].sort());
    assert.equal(receiver.received.length, 2);
    assert.deepEqual(sleeps, [500, 1_000]);
    assert.deepEqual(outcomeOf(listen, ids[0]), ["delivered", 3, 200]);
    assert.equal(
      lines.filter((l) => l.includes("[ERR]") && l.includes("injected network failure")).length,
      2,
    );
  });

  it("fail with attempts ≥ maxAttempts drops the event", async () => {
    const { source, receiver, listen } = await rig({
      retry: { maxAttempts: 3 },
      faults: { fail: { types: ["invoice.paid"], attempts: 1_000 } },
    });
    const ids = add(source, "invoice.paid", "invoice.finalized");
    await listen.flush();
    assert.deepEqual(receiver.accepted(), [ids[1]]);
    assert.deepEqual(outcomeOf(listen, ids[0]), ["gave_up", 3, null]);
    assert.deepEqual(outcomeOf(listen, ids[1]), ["delivered", 1, 200]);
  });

  it("stale: the chosen event comes again after `after` newer ones; a copy not yet due goes on flush", async () => {
    const { source, receiver, listen } = await rig({
      faults: { stale: { types: ["customer.subscription.updated"], after: 2 } },
    });
    const ids = add(
      source,
      "customer.subscription.updated",
      "invoice.paid",
      "invoice.finalized",
      "invoice.created",
      "customer.subscription.updated",
    );
    await listen.flush();
    assert.deepEqual(positions(receiver.accepted(), ids), [0, 1, 2, 0, 3, 4, 4]);
    assert.deepEqual(
      listen.outcomes.filter((o) => o.reason === "stale").map((o) => o.copy),
      [2, 2],
    );
  });

  it("setFaults refuses a bad fault and applies a good one to the events read after it", async () => {
    const { source, receiver, listen } = await rig();
    assert.throws(() => listen.setFaults({ duplicate: { times: 1 } }));
    assert.throws(() => listen.setFaults({ drop: {} } as never));
    const ids = add(source, "invoice.paid");
    await listen.flush();
    listen.setFaults({ duplicate: { times: 2 } });
    ids.push(...add(source, "invoice.paid"));
    await listen.flush();
    assert.deepEqual(positions(receiver.accepted(), ids), [0, 1, 1]);
  });

  it("the HTTP control sets faults (400 for a bad one), flushes and lists deliveries", async () => {
    const { source, receiver, listen } = await rig();
    const control = await startListenControl(listen);
    cleanups.push(control.stop);
    const put = (body: string) => fetch(`${control.url}/faults`, { method: "PUT", body });
    const bad = await put('{"duplicate":{"times":"two"}}');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /^duplicate\.times: /);
    assert.equal((await put("not json")).status, 400);
    assert.deepEqual(listen.faults(), {});
    const good = await put('{"seed":5,"duplicate":{"times":2}}');
    assert.equal(good.status, 200);
    assert.deepEqual(await good.json(), { seed: 5, duplicate: { times: 2 } });
    const ids = add(source, "invoice.paid");
    const flushed = await fetch(`${control.url}/flush`, { method: "POST" });
    assert.equal(flushed.status, 200);
    assert.deepEqual(receiver.accepted(), [ids[0], ids[0]]);
    const listed = (await (await fetch(`${control.url}/deliveries`)).json()) as { data: unknown[] };
    assert.equal(listed.data.length, 2);
  });
});
