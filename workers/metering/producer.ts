/**
 * Sends usage events to the queue, many per message. Called from `waitUntil` after the response is
 * on its way: the client never waits for metering. The consumer validates every event it receives
 * (workers/metering/consumer.ts): a malformed one is dead-lettered with its reason, never dropped.
 *
 * The audit records of authenticated requests that produced no usage event (`sendRequestAudit`:
 * refusals after authentication, tenant API calls) ride in the same envelopes (`audit`), so the
 * request audit log adds no queue message of its own.
 *
 * Each isolate buffers events and flushes one envelope (`{ v: 2, events }`, ≤ MAX_MESSAGE_BYTES,
 * well under the Queue's 128 KB) at most FLUSH_DELAY_MS after the first event of the batch. Every
 * caller gets the promise of the flush that carries its event and hands it to `waitUntil`, so the
 * isolate stays alive until its events are on the queue: the buffer never outlives the requests
 * that filled it.
 *
 * A failed send is retried with backoff (bounded: it runs inside waitUntil); if the queue stays
 * unavailable the batch is spooled durably in a UsageSpool Durable Object, which re-sends it from
 * an alarm. Never dropped; a batch sent twice (an acknowledgement lost) is stored once, because the
 * consumer inserts by event id ON CONFLICT DO NOTHING. Only if even the spool is unreachable are the
 * event ids logged at error level: the tenant object's ledger still shows the gap in reconciliation.
 */

import type { Bindings } from "../env";
import { log } from "../log";
import { Batcher } from "./usage-batcher";
import {
  MAX_CLIENT_IP,
  MAX_USER_AGENT,
  type RequestAuditRecord,
  type UsageEnvelope,
  type UsageEvent,
} from "./usage-event";

/** One message's budget: a quarter under the Queue's 128 KB limit (JSON size as the queue counts it). */
export const MAX_MESSAGE_BYTES = 96_000;
/** How long an event may wait in the isolate's buffer. Bounds the metering lag this adds. */
export const FLUSH_DELAY_MS = 250;
/** Waits before each re-send of a failed batch; then it goes to the spool (~1.3 s in all). */
export const SEND_RETRY_DELAYS_MS = [50, 250, 1_000] as const;
/** How often a request waiting for its batch looks whether it has been delivered. */
export const POLL_MS = 25;
/** A delivery not settled by then (retries and spool take ~2 s) is presumed lost with its request: redone. */
export const RESCUE_AFTER_MS = 10_000;
/** Spool shards: one Durable Object takes ~200–500 writes/s; batches spread over a few at random. */
export const SPOOL_SHARDS = 4;
const ENVELOPE_OVERHEAD = JSON.stringify({ v: 2, events: [], audit: [] } satisfies UsageEnvelope).length;

/** One item of a queue message: a usage event, or the audit record of an unmetered request. */
export type QueuedItem = { event: UsageEvent } | { audit: RequestAuditRecord };

export type UsageProducerEnv = Pick<Bindings, "USAGE_QUEUE" | "USAGE_SPOOL">;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Delivers one batch: the queue (with retries), else the spool (another shard if the first is
 * down), else an error log naming every event id. Never rejects.
 */
export async function deliverUsage(
  env: UsageProducerEnv,
  events: UsageEvent[],
  audit: RequestAuditRecord[] = [],
): Promise<void> {
  const envelope: UsageEnvelope = audit.length > 0 ? { v: 2, events, audit } : { v: 2, events };
  let lastError: unknown;
  for (let attempt = 0; attempt <= SEND_RETRY_DELAYS_MS.length; attempt++) {
    if (attempt > 0) await sleep(SEND_RETRY_DELAYS_MS[attempt - 1] ?? 0);
    try {
      await env.USAGE_QUEUE.send(envelope, { contentType: "json" });
      return;
    } catch (error) {
      lastError = error;
    }
  }
  const first = Math.floor(Math.random() * SPOOL_SHARDS);
  for (const shard of [first, (first + 1) % SPOOL_SHARDS]) {
    try {
      await env.USAGE_SPOOL.getByName(`usage-spool-${shard}`).spool(events, audit);
      log.warn("usage batch spooled: queue unavailable", {
        events: events.length,
        audit: audit.length,
        shard,
        error: String(lastError),
      });
      return;
    } catch (error) {
      lastError = error;
    }
  }
  log.error("usage events neither queued nor spooled", {
    events: events.length,
    event_ids: events.map((e) => e.id),
    audit_ids: audit.map((r) => r.id),
    error: String(lastError),
  });
}

// One batcher per queue binding: per isolate (module scope lives as long as the isolate), and in
// tests a replaced binding gets its own.
const batchers = new WeakMap<object, Batcher<QueuedItem>>();

function batcherFor(env: UsageProducerEnv): Batcher<QueuedItem> {
  let batcher = batchers.get(env.USAGE_QUEUE);
  if (!batcher) {
    batcher = new Batcher<QueuedItem>({
      maxBytes: MAX_MESSAGE_BYTES,
      maxDelayMs: FLUSH_DELAY_MS,
      pollMs: POLL_MS,
      rescueAfterMs: RESCUE_AFTER_MS,
      overheadBytes: ENVELOPE_OVERHEAD,
      sizeOf: (item) => JSON.stringify("event" in item ? item.event : item.audit).length,
      deliver: (items) =>
        deliverUsage(
          env,
          items.flatMap((i) => ("event" in i ? [i.event] : [])),
          items.flatMap((i) => ("audit" in i ? [i.audit] : [])),
        ),
      schedule: (fn, ms) => setTimeout(fn, ms),
      now: Date.now,
    });
    batchers.set(env.USAGE_QUEUE, batcher);
  }
  return batcher;
}

/**
 * The client fields as the audit log keeps them: the User-Agent cut to MAX_USER_AGENT, an address
 * longer than any real one left out. A header the client controls never makes an event invalid
 * (that would lose its usage).
 */
export function clientFields<T extends { clientIp?: string; userAgent?: string }>(record: T): T {
  const { clientIp, userAgent } = record;
  if (clientIp === undefined && userAgent === undefined) return record;
  const kept = { ...record };
  if (clientIp === undefined || clientIp.length > MAX_CLIENT_IP) delete kept.clientIp;
  if (userAgent === undefined) delete kept.userAgent;
  else if (userAgent.length > MAX_USER_AGENT) kept.userAgent = userAgent.slice(0, MAX_USER_AGENT);
  return kept;
}

/**
 * Adds `event` to this isolate's next queue message. The promise settles once that message is on the
 * queue or spooled: hand it to `waitUntil`. Never rejects.
 *
 * Not validated here: the proxy builds the event from typed values it already holds (a schema parse
 * per request was measurable in the hot-path profile), and the consumer validates every item on
 * arrival — an item that fails goes to the dead-letter queue with the reason, where a producer-side
 * check could only have dropped it with a log line.
 */
export async function sendUsageEvent(env: UsageProducerEnv, event: UsageEvent): Promise<void> {
  await batcherFor(env).add({ event: clientFields(event) });
}

/**
 * Adds the audit record of an authenticated request that produced no usage event to this isolate's
 * next queue message, like `sendUsageEvent` (hand the promise to `waitUntil`). Never rejects.
 */
export async function sendRequestAudit(env: UsageProducerEnv, record: RequestAuditRecord): Promise<void> {
  await batcherFor(env).add({ audit: clientFields(record) });
}
