/**
 * The billing reporter (cron `scheduled` handler): sends pending billing outbox rows to Stripe as
 * billing meter events, one per row, with the row id as the event `identifier` — so a retry after
 * a timeout or crash is deduplicated by Stripe, never counted twice. Never one call per request:
 * a row is one tenant's units for one hour from one consumer batch.
 *
 * Rows are claimed by pushing `next_attempt_at` ahead (no transaction is held while Stripe is
 * called); a crashed run's rows come back when the claim lapses. 429/5xx/timeouts retry with
 * backoff; other refusals mark the row failed with Stripe's message. Each row is sent on its own: one
 * row's failure never stops the others; a failed meter lookup (the first call) puts every claimed
 * row back with backoff.
 */
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import type { Bindings } from "../env";
import { log } from "../log";
import { openDb } from "../shared/db";
import { ensureMeter, meterEventName, stripeClient } from "../shared/stripe";

const BATCH = 200;
const CONCURRENCY = 4;
const CLAIM_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;
/** Stripe accepts meter events up to 35 days old; keep a margin. */
const MAX_EVENT_AGE_MS = 35 * 86_400_000 - 3_600_000;

export interface ReportSummary {
  enabled: boolean;
  sent: number;
  retrying: number;
  failed: number;
}

type DueRow = {
  id: string;
  tenant_id: string;
  hour: string | Date;
  units: string | number;
  attempts: number;
  stripe_customer_id: string | null;
};

type Outcome = { kind: "sent" } | { kind: "retry"; error: string } | { kind: "failed"; error: string };

/** `Type: message` of a Stripe error (or any error), as `last_error` keeps it. */
function describe(error: unknown): string {
  const e = error as { type?: string; message?: string };
  return `${e.type ?? "Error"}: ${e.message ?? String(error)}`;
}

function classify(error: unknown): Outcome {
  const e = error as { type?: string; code?: string; statusCode?: number; message?: string };
  const message = describe(error);
  // Stripe refuses a second event with the same identifier ("An event already exists with
  // identifier …", 400 without a code): it was reported already.
  if (e.type === "StripeInvalidRequestError" && /already exists with identifier/i.test(e.message ?? "")) {
    return { kind: "sent" };
  }
  if (
    e.type === "StripeRateLimitError" ||
    e.type === "StripeAPIError" ||
    e.type === "StripeConnectionError" ||
    (e.statusCode !== undefined && e.statusCode >= 500) ||
    e.statusCode === undefined
  ) {
    return { kind: "retry", error: message };
  }
  return { kind: "failed", error: message };
}

async function send(stripe: Stripe, eventName: string, row: DueRow, now: number): Promise<Outcome> {
  const hour = new Date(row.hour).getTime();
  if (!row.stripe_customer_id) return { kind: "retry", error: "tenant has no Stripe customer yet" };
  if (now - hour > MAX_EVENT_AGE_MS)
    return { kind: "failed", error: "older than Stripe's 35-day meter event window" };
  try {
    await stripe.billing.meterEvents.create({
      event_name: eventName,
      identifier: row.id,
      timestamp: Math.floor(hour / 1000),
      payload: { stripe_customer_id: row.stripe_customer_id, value: String(row.units) },
    });
    return { kind: "sent" };
  } catch (error) {
    return classify(error);
  }
}

/** Puts a claimed row back, due again after a backoff that doubles with each attempt (2 s, 4 s, … 1 h). */
async function retryLater(handle: ReturnType<typeof openDb>, row: DueRow, now: number, error: string) {
  const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** row.attempts);
  await handle.db.execute(
    sql`UPDATE billing_outbox SET next_attempt_at = ${new Date(now + delay)}, last_error = ${error} WHERE id = ${row.id}`,
  );
}

export async function reportUsage(env: Bindings, now: number = Date.now()): Promise<ReportSummary> {
  const stripe = stripeClient(env);
  if (!stripe) {
    log.warn("Stripe usage reporting is off: STRIPE_SECRET_KEY is not set");
    return { enabled: false, sent: 0, retrying: 0, failed: 0 };
  }
  const eventName = meterEventName(env); // before claiming rows: a bad name throws `misconfigured`
  const summary: ReportSummary = { enabled: true, sent: 0, retrying: 0, failed: 0 };
  const handle = openDb(env);
  try {
    const claimed = await handle.db.execute<DueRow>(sql`
      UPDATE billing_outbox o SET next_attempt_at = ${new Date(now + CLAIM_MS)}, attempts = o.attempts + 1
      FROM tenants t
      WHERE o.tenant_id = t.id AND o.id IN (
        SELECT id FROM billing_outbox
        WHERE state = 'pending' AND next_attempt_at <= ${new Date(now)}
        ORDER BY hour LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
      RETURNING o.id, o.tenant_id, o.hour, o.units, o.attempts, t.stripe_customer_id`);
    const rows = claimed.rows;
    if (rows.length === 0) return summary;
    // The meter lookup is the first Stripe call of a report (cached per isolate once it succeeds).
    // If it fails, nothing was sent: every claimed row stays pending and is due again after its
    // backoff, like a row whose own call failed — the report never aborts with rows left claimed.
    let lookupError: string | null = null;
    try {
      await ensureMeter(stripe, eventName);
    } catch (error) {
      lookupError = describe(error);
    }
    if (lookupError !== null) {
      log.warn("Stripe meter lookup failed; the claimed billing rows stay due", {
        error: lookupError,
        rows: rows.length,
      });
      for (const row of rows) {
        summary.retrying++;
        await retryLater(handle, row, now, lookupError);
      }
      return summary;
    }
    for (let i = 0; i < rows.length; i += CONCURRENCY) {
      const slice = rows.slice(i, i + CONCURRENCY);
      const outcomes = await Promise.all(slice.map((row) => send(stripe, eventName, row, now)));
      for (const [j, outcome] of outcomes.entries()) {
        const row = slice[j] as DueRow;
        if (outcome.kind === "sent") {
          summary.sent++;
          await handle.db.execute(
            sql`UPDATE billing_outbox SET state = 'sent', sent_at = ${new Date()}, last_error = NULL WHERE id = ${row.id}`,
          );
        } else if (outcome.kind === "retry") {
          summary.retrying++;
          await retryLater(handle, row, now, outcome.error);
        } else {
          summary.failed++;
          log.error("billing outbox row failed", { outbox_id: row.id, error: outcome.error });
          await handle.db.execute(
            sql`UPDATE billing_outbox SET state = 'failed', last_error = ${outcome.error} WHERE id = ${row.id}`,
          );
        }
      }
    }
    return summary;
  } finally {
    await handle.close();
  }
}
