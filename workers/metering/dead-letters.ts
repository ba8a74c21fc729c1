/**
 * What failed in the metering pipeline, kept for the operator and sent back through it:
 * - the consumer of the usage DLQ (`gateway-usage-dlq`) stores every message in `dead_letters`
 *   (schema/dead-letters.ts) and acks it; if Postgres is down the message is retried with backoff;
 * - a replay re-sends a stored body to the usage queue (the consumer is idempotent per event id, so
 *   events already stored stay stored once);
 * - a failed Stripe report (a `billing_outbox` row in state `failed`) goes back to `pending`.
 */
import { eq, sql } from "drizzle-orm";
import { type DeadLetter, deadLetters } from "../../schema";
import type { Bindings } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import { backoffSeconds } from "../shared/backoff";
import { type Db, openDb } from "../shared/db";

/** The dead-letter queue of the usage queue (wrangler.toml). */
export const USAGE_DLQ_NAME = "gateway-usage-dlq";
/** The queue its messages failed on, and where a replay sends them. */
const USAGE_QUEUE_NAME = "gateway-usage";

/** What the usage consumer sends to the DLQ for events it can never store (consumer.ts `settle`). */
interface ConsumerDeadLetter {
  reason: string;
  messageId: string;
  body: unknown;
}

function isConsumerDeadLetter(body: unknown): body is ConsumerDeadLetter {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.reason === "string" && typeof b.messageId === "string" && "body" in b;
}

/** The usage events a message body holds: an envelope's `events`, or one legacy bare event. */
export function eventsOf(body: unknown): unknown[] {
  const events =
    typeof body === "object" && body !== null ? (body as { events?: unknown }).events : undefined;
  return Array.isArray(events) ? events : [body];
}

/**
 * The row a DLQ message becomes. Two shapes arrive: the consumer's `{ reason, messageId, body }`
 * (the original message with why its events can never be stored), and the original message itself
 * when the queue gave up retrying it (no reason: Postgres was down past `max_retries`). The row id
 * is the original usage message's id when the consumer names it — a usage message redelivered after
 * a lost ack is dead-lettered twice, under two DLQ message ids, and is still one row — else the
 * DLQ message's own id (a redelivered DLQ message keeps it).
 */
export function deadLetterRow(message: Message<unknown>, now: Date): typeof deadLetters.$inferInsert {
  const consumer = isConsumerDeadLetter(message.body) ? message.body : null;
  const body = consumer ? consumer.body : message.body;
  return {
    id: consumer ? `${USAGE_QUEUE_NAME}:${consumer.messageId}` : message.id,
    queue: USAGE_QUEUE_NAME,
    reason: consumer ? consumer.reason.slice(0, 4000) : null,
    // jsonb cannot hold a bare `undefined`; a message always has a body, this is belt and braces.
    body: body ?? null,
    events: eventsOf(body).length,
    receivedAt: now,
  };
}

/** The DLQ consumer: stores each message once (ON CONFLICT DO NOTHING) and acks; retries while Postgres is down. */
export async function storeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  if (batch.messages.length === 0) return;
  const now = new Date();
  const handle = openDb(env);
  try {
    await handle.db
      .insert(deadLetters)
      .values(batch.messages.map((m) => deadLetterRow(m, now)))
      .onConflictDoNothing();
    for (const m of batch.messages) m.ack();
  } catch (error) {
    log.error("dead letters not stored; retrying", {
      messages: batch.messages.length,
      error: String(error).slice(0, 300),
    });
    for (const m of batch.messages) m.retry({ delaySeconds: backoffSeconds(m.attempts) });
  } finally {
    ctx.waitUntil(handle.close());
  }
}

/**
 * Re-sends a dead letter's body to the usage queue and counts the replay. 404 unknown; 503 when the
 * queue refuses (nothing counted). Replaying twice is harmless: events are stored once per id.
 */
export async function replayDeadLetter(env: Bindings, db: Db, id: string): Promise<DeadLetter> {
  const row = await db.query.deadLetters.findFirst({ where: eq(deadLetters.id, id) });
  if (!row) throw new GatewayError("not_found", "No such dead letter.");
  try {
    await env.USAGE_QUEUE.send(row.body as never, { contentType: "json" });
  } catch (error) {
    log.error("dead letter replay not queued", { dead_letter: id, error: String(error) });
    throw new GatewayError("service_unavailable", "The usage queue refused the message; try again.", {
      headers: { "retry-after": "10" },
    });
  }
  const [updated] = await db
    .update(deadLetters)
    .set({ replays: sql`${deadLetters.replays} + 1`, replayedAt: new Date() })
    .where(eq(deadLetters.id, id))
    .returning();
  return updated ?? row;
}

/**
 * Puts a failed Stripe report back in line: `pending`, attempts reset, due now. Safe to repeat: the
 * row id is the meter event's `identifier`, so if Stripe did take it before, it refuses the second
 * one as a duplicate and the reporter marks the row sent — never billed twice. 404 unless the row
 * exists and is `failed`.
 */
export async function retryFailedReport(db: Db, outboxId: string): Promise<void> {
  const result = await db.execute(sql`
    UPDATE billing_outbox SET state = 'pending', attempts = 0, next_attempt_at = ${new Date()}, last_error = NULL
    WHERE id = ${outboxId} AND state = 'failed' RETURNING id`);
  if (result.rows.length === 0) throw new GatewayError("not_found", "No failed report with that id.");
}
