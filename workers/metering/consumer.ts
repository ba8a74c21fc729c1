/**
 * The usage queue consumer. A message is an envelope of many events (`{ v: 2, events, audit? }`) or,
 * from before the change, one bare event. Every event and audit record is validated with the shared
 * schemas; the valid ones of the whole batch are written in one transaction (one row per event id,
 * one request audit entry per request id, so a redelivery stores nothing twice). Events and records
 * that can never be stored (invalid, or naming a tenant that does not exist) are copied to the
 * dead-letter queue with their reason — one DLQ message per queue message — and the message is
 * acked: never retried forever, never dropped silently. If the write fails, every message with
 * something to store in it is retried on its own with exponential backoff.
 *
 * A report message (put there by a billing report that ran out of budget) is not usage: it runs
 * the next leg of the report (workers/metering/stripe-reporter.ts), once per batch.
 */
import type { Bindings } from "../env";
import { log } from "../log";
import { backoffSeconds } from "../shared/backoff";
import { openDb } from "../shared/db";
import { writeUsageBatch } from "./postgres-sink";
import { isReportMessage } from "./report-message";
import { reportAndChain } from "./stripe-reporter";
import {
  type RequestAuditRecord,
  RequestAuditRecordSchema,
  UsageEnvelopeSchema,
  type UsageEvent,
  UsageEventSchema,
} from "./usage-event";

/** One event of a message that can never be stored, and why. */
export interface Rejected {
  reason: string;
  event: unknown;
}

/** A queue message taken apart: the events (and audit records) to store, and what can never be stored. */
export interface ParsedMessage {
  events: UsageEvent[];
  /** Audit records of unmetered requests; absent when the message carries none. */
  audit?: RequestAuditRecord[];
  rejected: Rejected[];
}

const issues = (error: { issues: Array<{ path: PropertyKey[]; message: string }> }) =>
  error.issues.map((i) => `${i.path.map(String).join(".")}: ${i.message}`).join("; ");

/** Splits a message body (envelope or legacy single event) into valid events and rejected ones. */
export function parseUsageMessage(body: unknown): ParsedMessage {
  const envelope = UsageEnvelopeSchema.safeParse(body);
  if (!envelope.success) {
    // The legacy form: one bare event per message.
    const single = UsageEventSchema.safeParse(body);
    if (single.success) return { events: [single.data], rejected: [] };
    const looksLikeEnvelope = typeof body === "object" && body !== null && "events" in body;
    return {
      events: [],
      rejected: [
        {
          reason: looksLikeEnvelope
            ? `invalid usage envelope: ${issues(envelope.error)}`
            : `invalid usage event: ${issues(single.error)}`,
          event: body,
        },
      ],
    };
  }
  const parsed: ParsedMessage = { events: [], rejected: [] };
  envelope.data.events.forEach((event, index) => {
    const result = UsageEventSchema.safeParse(event);
    if (result.success) parsed.events.push(result.data);
    else parsed.rejected.push({ reason: `invalid usage event [${index}]: ${issues(result.error)}`, event });
  });
  const audit: RequestAuditRecord[] = [];
  envelope.data.audit?.forEach((record, index) => {
    const result = RequestAuditRecordSchema.safeParse(record);
    if (result.success) audit.push(result.data);
    else
      parsed.rejected.push({
        reason: `invalid audit record [${index}]: ${issues(result.error)}`,
        event: record,
      });
  });
  if (audit.length > 0) parsed.audit = audit;
  return parsed;
}

/**
 * Copies what a message can never store to the DLQ with the reasons, then acks the message
 * (or retries it if the DLQ is down: its stored events are not stored twice on redelivery).
 */
async function settle(env: Bindings, message: Message<unknown>, rejected: Rejected[]): Promise<void> {
  if (rejected.length === 0) {
    message.ack();
    return;
  }
  const reason = [...new Set(rejected.map((r) => r.reason))].join(" | ");
  log.error("usage events dead-lettered", { message_id: message.id, events: rejected.length, reason });
  try {
    await env.USAGE_DLQ.send(
      { reason, messageId: message.id, rejected, body: message.body },
      { contentType: "json" },
    );
    message.ack();
  } catch (error) {
    log.error("dead-letter queue unavailable", { message_id: message.id, error: String(error) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

/** Runs the next leg of a chained billing report; the messages are retried if it fails. */
async function continueReport(reports: readonly Message<unknown>[], env: Bindings): Promise<void> {
  if (reports.length === 0) return;
  try {
    await reportAndChain(env);
    for (const m of reports) m.ack();
  } catch (error) {
    log.error("chained billing report failed; retrying", { error: String(error).slice(0, 300) });
    for (const m of reports) m.retry({ delaySeconds: backoffSeconds(m.attempts) });
  }
}

export async function consumeUsage(
  batch: MessageBatch<unknown>,
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  await storeUsage(
    batch.messages.filter((m) => !isReportMessage(m.body)),
    env,
    ctx,
  );
  await continueReport(
    batch.messages.filter((m) => isReportMessage(m.body)),
    env,
  );
}

async function storeUsage(
  batchMessages: readonly Message<unknown>[],
  env: Bindings,
  ctx: Pick<ExecutionContext, "waitUntil">,
): Promise<void> {
  if (batchMessages.length === 0) return;
  const messages = batchMessages.map((message) => ({ message, ...parseUsageMessage(message.body) }));
  const events = messages.flatMap((m) => m.events);
  const audit = messages.flatMap((m) => m.audit ?? []);
  if (events.length === 0 && audit.length === 0) {
    for (const m of messages) await settle(env, m.message, m.rejected);
    return;
  }

  const handle = openDb(env);
  try {
    const result = await writeUsageBatch(handle.db, events, audit);
    const unknown = new Set(result.unknownTenant);
    for (const m of messages) {
      const ghosts = [...m.events, ...(m.audit ?? [])]
        .filter((e) => unknown.has(e.id))
        .map((e) => ({ reason: `unknown tenant ${e.tenantId}`, event: e }));
      await settle(env, m.message, [...m.rejected, ...ghosts]);
    }
  } catch (error) {
    log.error("usage batch not written; retrying", {
      messages: messages.length,
      events: events.length,
      audit: audit.length,
      // Cut: a failed query's message carries the whole batch as its parameters.
      error: String(error).slice(0, 300),
    });
    for (const m of messages) {
      if (m.events.length > 0 || m.audit)
        m.message.retry({ delaySeconds: backoffSeconds(m.message.attempts) });
      else await settle(env, m.message, m.rejected);
    }
  } finally {
    // Closing resolves only when the socket has closed: the acks need not wait for that.
    ctx.waitUntil(handle.close());
  }
}
