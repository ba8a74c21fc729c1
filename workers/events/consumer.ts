/**
 * The events queue's consumer (`gateway-events`). A batch may hold:
 * - `events` messages: events decided in a tenant object (usage thresholds), stored and fanned out
 *   to the tenant's endpoints — their ids were fixed where they were decided, so a redelivered
 *   message stores nothing twice;
 * - `deliver` messages: one webhook delivery's next attempt (workers/events/attempt-delivery.ts),
 *   up to `DELIVERY_CONCURRENCY` at once, so one slow receiver never holds up the others' deliveries.
 * A message that fails is retried with backoff; an unreadable one is logged and acked. A receiver's
 * failure is not the message's: the attempt is recorded and its retry is a new, delayed message.
 */
import type { Bindings } from "../env";
import { log } from "../log";
import { backoffSeconds } from "../shared/backoff";
import { openDb } from "../shared/db";
import { attemptDelivery } from "./attempt-delivery";
import { isEventType, type NewEvent } from "./catalog";
import { dispatchDeliveries, recordEvents } from "./emit";
import type { DeliverMessage, EventsMessage, EventsQueueMessage } from "./messages";

/** Deliveries of one batch in flight at once (each may wait up to 15 s for its receiver). */
export const DELIVERY_CONCURRENCY = 10;

const isEventsMessage = (body: unknown): body is EventsMessage =>
  typeof body === "object" &&
  body !== null &&
  (body as { kind?: unknown }).kind === "events" &&
  Array.isArray((body as { events?: unknown }).events);

const isDeliverMessage = (body: unknown): body is DeliverMessage =>
  typeof body === "object" &&
  body !== null &&
  (body as { kind?: unknown }).kind === "deliver" &&
  typeof (body as { deliveryId?: unknown }).deliveryId === "string";

/** The events of an `events` message, with their times restored; unknown types are dropped (logged). */
function eventsOf(message: EventsMessage): NewEvent[] {
  const known = message.events.filter((e) => isEventType(e.type));
  if (known.length < message.events.length)
    log.error("events of unknown type dropped", { dropped: message.events.length - known.length });
  return known.map((e) => ({ ...e, at: new Date(e.at) }));
}

/** Stores the batch's `events` messages in one transaction, then queues their deliveries. */
async function storeEvents(
  messages: readonly Message<unknown>[],
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
) {
  if (messages.length === 0) return;
  const handle = openDb(env);
  try {
    const events = messages.flatMap((m) => eventsOf(m.body as EventsMessage));
    const deliveries = await handle.db.transaction(async (tx) => await recordEvents(tx, events));
    await dispatchDeliveries(env, deliveries);
    for (const m of messages) m.ack();
  } catch (error) {
    log.error("events not stored; retrying", {
      messages: messages.length,
      error: String(error).slice(0, 300),
    });
    for (const m of messages) m.retry({ delaySeconds: backoffSeconds(m.attempts) });
  } finally {
    ctx.waitUntil(handle.close());
  }
}

/**
 * Makes the attempt each `deliver` message asks for, `DELIVERY_CONCURRENCY` at a time over one
 * connection pool (no transaction is held while a receiver is called). Acked once the attempt is
 * recorded, whatever the receiver said; retried with backoff when Postgres failed.
 */
async function deliverAll(
  messages: readonly Message<unknown>[],
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
) {
  if (messages.length === 0) return;
  const handle = openDb(env);
  const queue = [...messages];
  const worker = async () => {
    for (let m = queue.shift(); m; m = queue.shift()) {
      const { deliveryId } = m.body as DeliverMessage;
      try {
        await attemptDelivery(env, handle.db, deliveryId);
        m.ack();
      } catch (error) {
        log.error("webhook attempt failed; retrying", {
          delivery_id: deliveryId,
          error: String(error).slice(0, 300),
        });
        m.retry({ delaySeconds: backoffSeconds(m.attempts) });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(DELIVERY_CONCURRENCY, messages.length) }, worker));
  } finally {
    ctx.waitUntil(handle.close());
  }
}

export async function consumeEvents(
  batch: MessageBatch<unknown>,
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  const events = batch.messages.filter((m) => isEventsMessage(m.body));
  const deliveries = batch.messages.filter((m) => isDeliverMessage(m.body));
  const other = batch.messages.filter((m) => !isEventsMessage(m.body) && !isDeliverMessage(m.body));
  for (const m of other) {
    log.error("unreadable events-queue message acked", {
      message_id: m.id,
      kind: String((m.body as EventsQueueMessage)?.kind),
    });
    m.ack();
  }
  await Promise.all([storeEvents(events, env, ctx), deliverAll(deliveries, env, ctx)]);
}
