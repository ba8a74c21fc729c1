/**
 * The usage queue consumer. Every message is validated with the shared schema; an invalid one (or
 * one naming a tenant that does not exist) is logged with its reason, copied to the dead-letter
 * queue and acked — never retried forever, never dropped silently. Valid messages are written in
 * one transaction; on failure each is retried on its own with exponential backoff.
 */
import type { Bindings } from "../env";
import { log } from "../log";
import { openDb } from "../shared/db";
import { writeUsageBatch } from "./postgres-sink";
import { type UsageEvent, UsageEventSchema } from "./usage-event";

const MAX_BACKOFF_S = 300;

/** 2, 4, 8 … seconds, capped at 5 minutes. */
export const backoffSeconds = (attempts: number) => Math.min(MAX_BACKOFF_S, 2 ** Math.max(1, attempts));

/** Copies a message that can never be stored to the DLQ with its reason, then acks it (retries if the DLQ is down). */
async function deadLetter(env: Bindings, message: Message<unknown>, reason: string): Promise<void> {
  log.error("usage message dead-lettered", { message_id: message.id, reason });
  try {
    await env.USAGE_DLQ.send({ reason, messageId: message.id, body: message.body }, { contentType: "json" });
    message.ack();
  } catch (error) {
    log.error("dead-letter queue unavailable", { message_id: message.id, error: String(error) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

export async function consumeUsage(
  batch: MessageBatch<unknown>,
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  const valid: { message: Message<unknown>; event: UsageEvent }[] = [];
  for (const message of batch.messages) {
    const parsed = UsageEventSchema.safeParse(message.body);
    if (parsed.success) valid.push({ message, event: parsed.data });
    else
      await deadLetter(
        env,
        message,
        `invalid usage event: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
  }
  if (valid.length === 0) return;

  const handle = openDb(env);
  try {
    const result = await writeUsageBatch(
      handle.db,
      valid.map((v) => v.event),
    );
    const unknown = new Set(result.unknownTenant);
    for (const { message, event } of valid) {
      if (unknown.has(event.id)) await deadLetter(env, message, `unknown tenant ${event.tenantId}`);
      else message.ack();
    }
  } catch (error) {
    log.error("usage batch not written; retrying", {
      messages: valid.length,
      // Cut: a failed query's message carries the whole batch as its parameters.
      error: String(error).slice(0, 300),
    });
    for (const { message } of valid) message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  } finally {
    // Closing resolves only when the socket has closed: the acks need not wait for that.
    ctx.waitUntil(handle.close());
  }
}
