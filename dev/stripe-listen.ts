/**
 * `stripe listen --forward-to …` for the local stack: reads the account's events from a Stripe API
 * (the local stand-in, through the real `stripe` package) and POSTs each, signed with a `whsec_`
 * secret as Stripe signs webhooks, to the Worker's `POST /webhooks/stripe`.
 *
 * - Starts from now: events created before it started are not replayed (as `stripe listen`).
 * - Polls `GET /v1/events` every `pollMs` (newest first; `ending_before` the newest event seen, so
 *   the package's auto-pagination yields the new ones oldest first) and delivers them in that order,
 *   one at a time: the body is the event JSON, and exactly those bytes are signed
 *   (`Stripe-Signature: t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">`, a fresh `t` per attempt).
 * - A non-2xx answer or a network error is retried after `min(capMs, baseMs · 2^(n-1))` (n = failed
 *   attempts so far), up to `maxAttempts` attempts, then given up and logged. As with Stripe, the
 *   events behind it do not wait: they go on while it waits, and it rejoins the line when its wait is
 *   over (so a retried event arrives after newer ones).
 * - Faults (dev/stripe-listen-faults.ts) duplicate, reorder, fail or replay events late,
 *   deterministically for a seed; `setFaults` changes them while it runs.
 * - One line per delivery on `log`, like `stripe listen`: `--> invoice.paid [evt_…]`, then
 *   `<-- [200] POST http://…/webhooks/stripe [evt_…]`.
 */
import { randomBytes } from "node:crypto";
import Stripe from "stripe";
import { type Delivery, FaultPlan, type Faults, FaultsSchema } from "./stripe-listen-faults";

export type { Faults } from "./stripe-listen-faults";

/** How failed deliveries are retried. */
export interface RetryPolicy {
  /** Wait after the first failed attempt; doubles after each further one. */
  baseMs: number;
  /** Longest wait between two attempts. */
  capMs: number;
  /** Attempts in all (the first included) before the event is given up. */
  maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 500, capMs: 30_000, maxAttempts: 8 };

export interface StripeListenOptions {
  /** Base URL of the Stripe API to read events from, e.g. the stand-in's `http://127.0.0.1:<port>`. */
  apiUrl: string;
  apiKey: string;
  /** The webhook endpoint, e.g. `http://127.0.0.1:8787/webhooks/stripe`. */
  forwardTo: string;
  /** `whsec_…` to sign with; default a fresh random one (read it back from `secret`). */
  secret?: string;
  /** Time between two reads of the event list (default 1000); `flush()` reads at once. */
  pollMs?: number;
  faults?: Faults;
  retry?: Partial<RetryPolicy>;
  /** Time to the endpoint's answer before an attempt counts as a network error (default 10000). */
  timeoutMs?: number;
  /** Where the delivery lines go (default `console.log`). */
  log?: (line: string) => void;
  /** Waits between attempts (default a real timer); resolves early, or rejects, when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What became of one delivery. `stopped`: `stop()` came before it succeeded. */
export interface DeliveryOutcome {
  eventId: string;
  type: string;
  copy: number;
  reason: Delivery["reason"];
  attempts: number;
  /** The endpoint's last status; null when the last attempt never got an answer. */
  status: number | null;
  result: "delivered" | "gave_up" | "stopped";
}

export interface StripeListen {
  /** The `whsec_…` every delivery is signed with: the Worker's `STRIPE_WEBHOOK_SECRET`. */
  readonly secret: string;
  /** Every delivery finished so far, in the order they finished. */
  readonly outcomes: readonly DeliveryOutcome[];
  faults(): Faults;
  /** Replaces the faults (validated; throws on a bad one). What the old ones held back is let go first. */
  setFaults(faults: Faults): void;
  /** Resolves when nothing is being delivered or waiting to be. */
  idle(): Promise<void>;
  /** Reads the event list now, lets go of every held delivery, and resolves when all are done. */
  flush(): Promise<void>;
  /** Stops reading, cancels waiting retries, and resolves when the delivery in flight has finished. */
  stop(): Promise<void>;
}

/** The wait after `failures` failed attempts (1 = after the first). */
export function backoffMs(failures: number, retry: RetryPolicy): number {
  return Math.min(retry.capMs, retry.baseMs * 2 ** (failures - 1));
}

/** A `whsec_` secret like the ones Stripe makes: 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

type Attempt = { status: number | null; error?: string };
type Job = { delivery: Delivery<Stripe.Event>; failures: number };

/** Starts forwarding; resolves once it knows which events already existed (those are skipped). */
export async function startStripeListen(options: StripeListenOptions): Promise<StripeListen> {
  const base = new URL(options.apiUrl);
  const stripe = new Stripe(options.apiKey, {
    host: base.hostname,
    port: Number(base.port || (base.protocol === "https:" ? 443 : 80)),
    protocol: base.protocol === "https:" ? "https" : "http",
    maxNetworkRetries: 0,
  });
  const secret = options.secret ?? newWebhookSecret();
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const log = options.log ?? ((line: string) => console.log(line));
  const sleep = options.sleep ?? realSleep;
  const pollMs = options.pollMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const startedAt = Math.floor(Date.now() / 1000);

  let plan = new FaultPlan<Stripe.Event>(FaultsSchema.parse(options.faults ?? {}));
  /** Deliveries due now, in delivery order; one is posted at a time. */
  const queue: Job[] = [];
  /** Deliveries waiting out their backoff, each until it rejoins the front of the queue. */
  const waiting = new Set<Promise<void>>();
  const outcomes: DeliveryOutcome[] = [];
  const cancel = new AbortController();
  let stopped = false;
  let pumping: Promise<void> | null = null;
  /** Deliveries enqueued and not yet finished; `idle()` waits for 0. */
  let unsettled = 0;
  const onSettled: Array<() => void> = [];
  let polling: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** The newest event seen; null = none yet, so the next read takes those created since `startedAt`. */
  let cursor: string | null = null;
  let lastReadError: string | null = null;

  /** The newest event of the account when it starts: everything up to it is history. */
  try {
    const newest = await stripe.events.list({ limit: 1 });
    cursor = newest.data[0]?.id ?? null;
  } catch (err) {
    lastReadError = describe(err);
    log(`${stamp()}  cannot read events from ${options.apiUrl} yet: ${lastReadError}`);
  }

  async function readNew(): Promise<Stripe.Event[]> {
    const events: Stripe.Event[] = [];
    if (cursor) {
      // With ending_before the package pages towards newer events and yields oldest first.
      for await (const event of stripe.events.list({ ending_before: cursor, limit: 100 })) events.push(event);
    } else {
      for await (const event of stripe.events.list({ created: { gt: startedAt - 1 }, limit: 100 })) {
        events.push(event);
      }
      events.reverse();
    }
    return events;
  }

  async function pollOnce(): Promise<void> {
    if (stopped) return;
    let events: Stripe.Event[];
    try {
      events = await readNew();
    } catch (err) {
      const message = describe(err);
      if (message !== lastReadError) log(`${stamp()}  cannot read events from ${options.apiUrl}: ${message}`);
      lastReadError = message;
      return;
    }
    if (lastReadError) log(`${stamp()}  reading events from ${options.apiUrl}`);
    lastReadError = null;
    for (const event of events) {
      cursor = event.id;
      enqueue(plan.admit(event));
    }
  }

  const poll = () => {
    polling = polling.then(pollOnce);
    return polling;
  };

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void poll().finally(schedule), pollMs);
  }

  function enqueue(deliveries: Array<Delivery<Stripe.Event>>): void {
    if (stopped) return;
    for (const delivery of deliveries) queue.push({ delivery, failures: 0 });
    unsettled += deliveries.length;
    pump();
  }

  function settle(count: number): void {
    unsettled -= count;
    if (unsettled > 0) return;
    for (const resolve of onSettled.splice(0)) resolve();
  }

  function pump(): void {
    if (pumping || stopped || queue.length === 0) return;
    pumping = (async () => {
      for (let job = queue.shift(); job; job = stopped ? undefined : queue.shift()) await attempt(job);
      pumping = null;
    })();
  }

  /** One attempt; a failure before the last waits aside (later deliveries go on) and rejoins the front. */
  async function attempt(job: Job): Promise<void> {
    const { delivery } = job;
    const { event } = delivery;
    const n = job.failures + 1;
    const note = n > 1 ? ` (attempt ${n})` : delivery.reason === "event" ? "" : ` (${delivery.reason})`;
    log(`${stamp()}   --> ${event.type} [${event.id}]${note}`);
    const answer = n <= delivery.failAttempts ? injected() : await post(event);
    const ok = answer.status !== null && answer.status >= 200 && answer.status < 300;
    const line = `${stamp()}  <--  [${answer.status ?? "ERR"}] POST ${options.forwardTo} [${event.id}]`;
    const why = answer.error ? ` ${answer.error}` : "";
    const finish = (result: DeliveryOutcome["result"]) => {
      outcomes.push({
        eventId: event.id,
        type: event.type,
        copy: delivery.copy,
        reason: delivery.reason,
        attempts: n,
        status: answer.status,
        result,
      });
      settle(1);
    };
    if (ok) {
      log(line);
      return finish("delivered");
    }
    if (n >= retry.maxAttempts) {
      log(`${line}${why}; gave up after ${n} attempts`);
      return finish("gave_up");
    }
    if (cancel.signal.aborted) return finish("stopped");
    const wait = backoffMs(n, retry);
    log(`${line}${why}; retry in ${wait} ms`);
    job.failures = n;
    const waited: Promise<void> = sleep(wait, cancel.signal)
      .catch(() => {})
      .then(() => {
        waiting.delete(waited);
        if (cancel.signal.aborted) return finish("stopped");
        queue.unshift(job);
        pump();
      });
    waiting.add(waited);
  }

  async function post(event: Stripe.Event): Promise<Attempt> {
    const body = JSON.stringify(event, null, 2);
    const signature = await stripe.webhooks.generateTestHeaderStringAsync({ payload: body, secret });
    try {
      const res = await fetch(options.forwardTo, {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=utf-8",
          "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
          "stripe-signature": signature,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
      return { status: res.status };
    } catch (err) {
      return { status: null, error: `(${describe(err)})` };
    }
  }

  function idle(): Promise<void> {
    return unsettled === 0 ? Promise.resolve() : new Promise((resolve) => onSettled.push(resolve));
  }

  log(
    `${stamp()}  Ready! Forwarding ${options.apiUrl} events to ${options.forwardTo}; signing secret ${secret}`,
  );
  schedule();
  return {
    secret,
    outcomes,
    faults: () => plan.faults,
    setFaults(faults) {
      const next = new FaultPlan<Stripe.Event>(FaultsSchema.parse(faults));
      enqueue(plan.release());
      plan = next;
    },
    idle,
    async flush() {
      await poll();
      enqueue(plan.release());
      await idle();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      cancel.abort();
      await polling;
      while (pumping) await pumping;
      await Promise.all(waiting);
      const left = queue.splice(0).length + plan.release().length;
      if (left > 0) log(`${stamp()}  stopped; ${left} deliveries not made`);
      settle(unsettled); // a flush() waiting on them is over too
    },
  };
}

function injected(): Attempt {
  return { status: null, error: "(injected network failure)" };
}

function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** `2026-12-01 02:31:00`, as `stripe listen` starts its lines (UTC). */
function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace("T", " ");
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
