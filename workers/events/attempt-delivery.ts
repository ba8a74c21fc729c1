/**
 * One attempt of one webhook delivery: claim it, send it, record what happened, and decide what
 * comes next — done, another attempt later (a new `deliver` message with a delay, and
 * `next_attempt_at` stored so the sweep sends it if that message is lost), dead-lettered after the
 * last retry, or the endpoint switched off (410 Gone, or 5 days of failures).
 *
 * - The claim is one conditional UPDATE (pending, not claimed by a live attempt, due): two consumers
 *   holding messages for the same delivery never send the same attempt. No transaction is held while
 *   the receiver is called.
 * - The URL is checked again (workers/events/endpoint-url.ts): a URL stored before a rule changed,
 *   or written straight into the table, is refused without a request. Redirects are never followed:
 *   a 3xx is a failed attempt, so a public URL cannot bounce the request inward.
 * - Only the first 1 KiB of the response is read, within the same 15 s as the status.
 * - Expected failures (the receiver's status, a timeout, a refused URL) are values; only an
 *   infrastructure failure (Postgres) throws, for the consumer to retry the message.
 * - Time is a parameter (`now`), so tests walk the whole schedule without waiting.
 */
import { and, eq, isNull, lt, lte, or, sql } from "drizzle-orm";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../schema";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { log } from "../log";
import type { Db } from "../shared/db";
import { deliveryBody } from "./catalog";
import { announceDisabled, disableEndpoint } from "./endpoint-disable";
import { checkEndpointUrl } from "./endpoint-url";
import type { DeliverMessage } from "./messages";
import { parseRetryAfter, retryDelaySeconds } from "./retry-schedule";
import { webhookHeaders } from "./webhook-signature";

/** A receiver that has not answered within this long has failed the attempt. */
export const DELIVERY_TIMEOUT_MS = 15_000;
/** How long a claimed delivery is held: longer than an attempt can take (timeout plus bookkeeping). */
export const CLAIM_MS = 60_000;
/** How much of the response body is kept for the delivery log. */
export const EXCERPT_BYTES = 1024;
/**
 * A message may arrive a little before the stored due time (queue delays are whole seconds); a
 * message arriving earlier than this is a stale duplicate and is dropped.
 */
const EARLY_TOLERANCE_MS = 1_000;

export interface AttemptOptions {
  /** The attempt's time (default: now): its `webhook-timestamp`, `started_at`, and the base of the next due time. */
  now?: Date;
  /** Default `DELIVERY_TIMEOUT_MS`. */
  timeoutMs?: number;
  /** Jitter source in [0, 1) (default `Math.random()`). */
  random?: number;
}

/** What an attempt did. */
export type AttemptOutcome =
  /** No attempt: not pending, held by another attempt, not due yet, or gone. */
  | { result: "skipped" }
  /** No attempt: the endpoint is disabled, the delivery is cancelled. */
  | { result: "cancelled" }
  | { result: "succeeded"; attempt: number; status: number }
  /** Failed; the next attempt is due at `nextAttemptAt`. */
  | { result: "retry"; attempt: number; status: number | null; nextAttemptAt: Date; delaySeconds: number }
  /** Failed, and it was the last attempt: the delivery is in the dead-letter store. */
  | { result: "dead"; attempt: number; status: number | null }
  /** Failed, and the endpoint was disabled (or already was): the delivery is cancelled. */
  | { result: "disabled"; attempt: number; status: number | null };

/** How the receiver answered (or why it did not). */
interface ReceiverAnswer {
  status: number | null;
  excerpt: string | null;
  error: string | null;
  retryAfterS: number | null;
  latencyMs: number;
}

/**
 * Makes the due attempt of delivery `deliveryId`, if it is pending, due and not held by another
 * attempt. Throws only when Postgres fails (the message is then retried).
 */
export async function attemptDelivery(
  env: Bindings,
  db: Db,
  deliveryId: string,
  options: AttemptOptions = {},
): Promise<AttemptOutcome> {
  const now = options.now ?? new Date();
  const claimUntil = new Date(now.getTime() + CLAIM_MS);
  const [claimed] = await db
    .update(webhookDeliveries)
    .set({ claimedUntil: claimUntil })
    .where(
      and(
        eq(webhookDeliveries.id, deliveryId),
        eq(webhookDeliveries.status, "pending"),
        or(isNull(webhookDeliveries.claimedUntil), lt(webhookDeliveries.claimedUntil, now)),
        or(
          isNull(webhookDeliveries.nextAttemptAt),
          lte(webhookDeliveries.nextAttemptAt, new Date(now.getTime() + EARLY_TOLERANCE_MS)),
        ),
      ),
    )
    .returning({ attempts: webhookDeliveries.attempts });
  if (!claimed) return { result: "skipped" };

  const [row] = await db
    .select({ event: webhookEvents, endpoint: webhookEndpoints })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(eq(webhookDeliveries.id, deliveryId));
  if (!row) return { result: "skipped" };
  const { event, endpoint } = row;
  const held = and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.claimedUntil, claimUntil));

  // A test send goes to its endpoint even while it is off (that is how a tenant checks a fix).
  if (!endpoint.enabled && event.type !== "webhook.test") {
    await db
      .update(webhookDeliveries)
      .set({ status: "cancelled", nextAttemptAt: null, claimedUntil: null, updatedAt: now })
      .where(held);
    return { result: "cancelled" };
  }

  const answer = await send(env, endpoint, event, now, options.timeoutMs ?? DELIVERY_TIMEOUT_MS);
  const attempt = claimed.attempts + 1;
  const ok = answer.status !== null && answer.status >= 200 && answer.status < 300;
  const gone = answer.status === 410;
  const delaySeconds =
    ok || gone
      ? null
      : retryDelaySeconds(attempt, { retryAfterS: answer.retryAfterS, random: options.random });
  const nextAttemptAt = delaySeconds === null ? null : new Date(now.getTime() + delaySeconds * 1000);
  const status = ok ? "succeeded" : gone ? "cancelled" : nextAttemptAt ? "pending" : "dead";

  const recorded = await db.transaction(async (tx) => {
    const updated = await tx
      .update(webhookDeliveries)
      .set({
        status,
        attempts: attempt,
        nextAttemptAt,
        claimedUntil: null,
        lastStatus: answer.status,
        lastError: answer.error,
        updatedAt: now,
      })
      .where(and(held, eq(webhookDeliveries.status, "pending")))
      .returning({ id: webhookDeliveries.id });
    if (updated.length === 0) return null;
    await tx.insert(webhookAttempts).values({
      tenantId: event.tenantId,
      deliveryId,
      attempt,
      startedAt: now,
      status: answer.status,
      latencyMs: answer.latencyMs,
      responseExcerpt: answer.excerpt,
      error: answer.error,
    });
    if (ok) {
      await tx
        .update(webhookEndpoints)
        .set({ failingSince: null })
        .where(eq(webhookEndpoints.id, endpoint.id));
      return { disabled: null };
    }
    if (gone) return { disabled: await disableEndpoint(tx, endpoint.id, "gone", now) };
    // Only an enabled endpoint's streak counts: a test send to an endpoint that is off must not
    // leave a stale `failingSince` that would switch it off again at its first failure once re-enabled.
    await tx
      .update(webhookEndpoints)
      .set({
        failingSince: sql`coalesce(${webhookEndpoints.failingSince}, ${now.toISOString()}::timestamptz)`,
      })
      .where(and(eq(webhookEndpoints.id, endpoint.id), eq(webhookEndpoints.enabled, true)));
    return { disabled: await disableEndpoint(tx, endpoint.id, "failing", now) };
  });

  if (!recorded) {
    // The claim ran out before the attempt was recorded (Postgres stalled for a minute): another
    // attempt owns the delivery now, and this one is left out of the log rather than counted twice.
    log.warn("webhook attempt not recorded: claim lost", {
      tenant_id: event.tenantId,
      delivery_id: deliveryId,
    });
    return { result: "skipped" };
  }
  if (recorded.disabled) await announceDisabled(env, recorded.disabled);
  if (ok) return { result: "succeeded", attempt, status: answer.status as number };
  if (gone || recorded.disabled) return { result: "disabled", attempt, status: answer.status };
  if (!nextAttemptAt || delaySeconds === null) return { result: "dead", attempt, status: answer.status };
  await scheduleAttempt(env, deliveryId, delaySeconds);
  return { result: "retry", attempt, status: answer.status, nextAttemptAt, delaySeconds };
}

/** Sends the next attempt's message with its delay. A lost send is harmless: the sweep finds the overdue delivery. */
async function scheduleAttempt(env: Bindings, deliveryId: string, delaySeconds: number): Promise<void> {
  try {
    await env.EVENTS_QUEUE.send({ kind: "deliver", deliveryId } satisfies DeliverMessage, {
      contentType: "json",
      delaySeconds,
    });
  } catch (error) {
    log.warn("webhook retry not queued; the sweep will send it", {
      delivery_id: deliveryId,
      error: String(error).slice(0, 200),
    });
  }
}

/** Calls the receiver once (or refuses to), within `timeoutMs`. */
async function send(
  env: Bindings,
  endpoint: typeof webhookEndpoints.$inferSelect,
  event: typeof webhookEvents.$inferSelect,
  now: Date,
  timeoutMs: number,
): Promise<ReceiverAnswer> {
  const verdict = checkEndpointUrl(endpoint.url, { allowLocalhost: configOf(env).webhookAllowLocalhost });
  if (!verdict.ok)
    return {
      status: null,
      excerpt: null,
      error: `URL refused: ${verdict.reason}`,
      retryAfterS: null,
      latencyMs: 0,
    };
  const body = deliveryBody(event);
  const started = performance.now();
  const latency = () => Math.max(0, Math.round(performance.now() - started));
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(verdict.url, {
      method: "POST",
      headers: webhookHeaders(event.id, body, endpoint, now),
      body,
      redirect: "manual",
      signal,
    });
  } catch (error) {
    const timedOut = signal.aborted;
    return {
      status: null,
      excerpt: null,
      error: timedOut
        ? `no response within ${timeoutMs} ms`
        : `request failed: ${String(error).slice(0, 200)}`,
      retryAfterS: null,
      latencyMs: latency(),
    };
  }
  const excerpt = await readExcerpt(res);
  const redirect = res.status >= 300 && res.status < 400;
  return {
    status: res.status,
    excerpt,
    error: redirect
      ? `redirect not followed (location: ${(res.headers.get("location") ?? "none").slice(0, 200)})`
      : null,
    retryAfterS:
      res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers.get("retry-after"), now) : null,
    latencyMs: latency(),
  };
}

/** The first `EXCERPT_BYTES` of a response body as text; the rest is never read. */
async function readExcerpt(res: Response): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Timed out or cut off mid-body: the status is what counts, keep the bytes that came.
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, EXCERPT_BYTES));
  let offset = 0;
  for (const chunk of chunks) {
    if (offset >= bytes.length) break;
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
  }
  // `stream: true` drops a character cut in half at the limit; Postgres text cannot hold NUL.
  const text = new TextDecoder().decode(bytes, { stream: true }).replaceAll("\u0000", "");
  return text === "" ? null : text;
}
