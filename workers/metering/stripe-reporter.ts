/**
 * The billing reporter (cron `scheduled` handler): sends the billing outbox to Stripe as billing
 * meter events, ONE per row — one tenant's units for one hour (a later row of the same hour is a
 * delta: units that arrived after the hour was reported) — with the row id as the event
 * `identifier`, so a retry after a timeout or crash is deduplicated by Stripe, never counted twice.
 * Stripe calls therefore scale with tenants × hours, not with requests.
 *
 * A row is due once its hour has ended plus the lateness margin (`STRIPE_REPORT_LATENESS_S`), and,
 * for a tenant on a metered plan, once its subscription exists: Stripe bills a period's meter events
 * by timestamp in [period start, period end), so an event is stamped at its hour's start or the
 * subscription's start, whichever is later (`meterTimestamp`) — the units of the hour a subscription
 * starts in, and of hours before it, go into its first period instead of before it, on no invoice.
 * Rows are claimed a page at a time by pushing `next_attempt_at` ahead and closing them (the
 * consumer then opens the hour's next seq instead of adding to a row being sent); no transaction
 * is held while Stripe is called, and a crashed run's rows come back when the claim lapses.
 * 429/5xx/timeouts retry with backoff; other refusals (and hours past Stripe's 35-day window) mark
 * the row failed with the reason, which reconciliation shows: never retried forever, never silent.
 * One row's failure never stops the others; a failed meter lookup (the first call) puts every
 * claimed row back with backoff.
 *
 * One invocation sends at most `MAX_ROWS_PER_RUN` rows, CONCURRENCY at a time; if rows are still
 * due then, it puts a report message on the usage queue and the queue consumer (a new invocation
 * with its own limits) goes on, chaining until nothing is due.
 */
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { log } from "../log";
import { openDb } from "../shared/db";
import { ensureMeter, meterEventName, stripeClient } from "../shared/stripe";
import { REPORT_MESSAGE } from "./report-message";

/** Rows claimed per statement. */
const PAGE = 500;
/** Stripe calls in flight: a Worker invocation has 6 simultaneous outgoing connections, one is Postgres. */
const CONCURRENCY = 5;
/**
 * Rows (so at most as many Stripe calls) per invocation: half the 10,000 subrequests a Workers
 * Paid invocation may make (docs: Workers › Platform › Limits), and at ~150 ms a call about
 * 150 s of wall time, well inside the 15 minutes of a cron or queue invocation.
 */
export const MAX_ROWS_PER_RUN = 5_000;
const CLAIM_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;
const HOUR_MS = 3_600_000;
/** Stripe accepts meter events up to 35 days old; keep a margin. */
const MAX_EVENT_AGE_MS = 35 * 86_400_000 - HOUR_MS;

export interface ReportSummary {
  enabled: boolean;
  sent: number;
  retrying: number;
  failed: number;
  /** Rows were still due when the run's budget was spent. */
  more: boolean;
}

type DueRow = {
  id: string;
  tenant_id: string;
  hour: string | Date;
  units: string | number;
  attempts: number;
  stripe_customer_id: string | null;
  billing_started_at: string | Date | null;
};

/**
 * The instant (epoch s) a row's meter event is stamped with: its hour's start, or the tenant's
 * subscription start if that is later. The billing view counts units by the same rule.
 */
export function meterTimestamp(hour: number, subscriptionStart: number | null): number {
  return Math.floor(Math.max(hour, subscriptionStart ?? hour) / 1000);
}

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
  const timestamp = meterTimestamp(
    new Date(row.hour).getTime(),
    row.billing_started_at === null ? null : new Date(row.billing_started_at).getTime(),
  );
  if (now - timestamp * 1000 > MAX_EVENT_AGE_MS)
    return { kind: "failed", error: "older than Stripe's 35-day meter event window" };
  if (!row.stripe_customer_id) return { kind: "retry", error: "tenant has no Stripe customer yet" };
  try {
    await stripe.billing.meterEvents.create({
      event_name: eventName,
      identifier: row.id,
      timestamp,
      payload: { stripe_customer_id: row.stripe_customer_id, value: String(row.units) },
    });
    return { kind: "sent" };
  } catch (error) {
    return classify(error);
  }
}

/** Sends every row, at most CONCURRENCY calls at a time; the outcomes in row order. */
async function sendAll(stripe: Stripe, eventName: string, rows: DueRow[], now: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(rows.length);
  let next = 0;
  const lane = async () => {
    while (next < rows.length) {
      const i = next++;
      outcomes[i] = await send(stripe, eventName, rows[i] as DueRow, now);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, lane));
  return outcomes;
}

/** Backoff after a failed attempt: doubles with each attempt (2 s, 4 s, … 1 h). */
const retryAt = (row: DueRow, now: number) =>
  new Date(now + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** row.attempts));

/** Writes the outcomes of a page back in one statement. */
async function settle(db: ReturnType<typeof openDb>["db"], rows: DueRow[], outcomes: Outcome[], now: number) {
  const state = outcomes.map((o) => (o.kind === "retry" ? "pending" : o.kind));
  const error = outcomes.map((o) => (o.kind === "sent" ? null : o.error));
  const nextAt = rows.map((row, i) =>
    outcomes[i]?.kind === "retry" ? retryAt(row, now).toISOString() : null,
  );
  await db.execute(sql`
    UPDATE billing_outbox o SET state = r.state::outbox_state, last_error = r.error,
      sent_at = CASE WHEN r.state = 'sent' THEN ${new Date()} ELSE o.sent_at END,
      next_attempt_at = coalesce(r.next_at, o.next_attempt_at)
    FROM unnest(${sql.param(rows.map((r) => r.id))}::text[], ${sql.param(state)}::text[],
      ${sql.param(error)}::text[], ${sql.param(nextAt)}::timestamptz[]) AS r(id, state, error, next_at)
    WHERE o.id = r.id`);
}

export interface ReportOptions {
  /**
   * Also send the hours still open (the operator's "report now", e.g. before closing a period by
   * hand): each goes out with its units so far, and its later units open the next `seq` and go out
   * as a delta, like units that arrive late. One extra meter event per tenant per open hour.
   */
  openHours?: boolean;
}

export async function reportUsage(
  env: Bindings,
  now: number = Date.now(),
  maxRows: number = MAX_ROWS_PER_RUN,
  options: ReportOptions = {},
): Promise<ReportSummary> {
  const stripe = stripeClient(env);
  if (!stripe) {
    log.warn("Stripe usage reporting is off: STRIPE_SECRET_KEY is not set");
    return { enabled: false, sent: 0, retrying: 0, failed: 0, more: false };
  }
  const eventName = meterEventName(env); // before claiming rows: a bad name throws `misconfigured`
  // An hour is due once it has ended plus the lateness margin: its start is at most this.
  const closedBefore = new Date(
    options.openHours ? now : now - HOUR_MS - configOf(env).stripeReportLatenessS * 1000,
  );
  // A metered tenant's rows wait for its subscription (made with the tenant, or later by the billing
  // sync when Stripe was off): sent before it, they would be stamped before its first period.
  const due = sql`state = 'pending' AND next_attempt_at <= ${new Date(now)} AND hour <= ${closedBefore}
    AND NOT EXISTS (SELECT 1 FROM tenants t JOIN plans p ON p.id = t.plan_id
      WHERE t.id = billing_outbox.tenant_id AND t.stripe_subscription_id IS NULL
        AND p.pricing->>'model' = 'metered')`;
  const summary: ReportSummary = { enabled: true, sent: 0, retrying: 0, failed: 0, more: false };
  const handle = openDb(env);
  try {
    let claimedTotal = 0;
    let meterReady = false;
    while (claimedTotal < maxRows) {
      const claimed = await handle.db.execute<DueRow>(sql`
        UPDATE billing_outbox o SET next_attempt_at = ${new Date(now + CLAIM_MS)}, attempts = o.attempts + 1,
          closed_at = coalesce(o.closed_at, ${new Date(now)})
        FROM tenants t
        WHERE o.tenant_id = t.id AND o.id IN (
          SELECT id FROM billing_outbox WHERE ${due}
          ORDER BY hour LIMIT ${Math.min(PAGE, maxRows - claimedTotal)} FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.tenant_id, o.hour, o.units, o.attempts, t.stripe_customer_id, t.billing_started_at`);
      const rows = claimed.rows;
      if (rows.length === 0) break;
      claimedTotal += rows.length;
      if (!meterReady) {
        // The meter lookup is the first Stripe call of a report (cached per isolate once it
        // succeeds). If it fails, nothing was sent: every claimed row stays pending and is due
        // again after its backoff, like a row whose own call failed.
        try {
          await ensureMeter(stripe, eventName);
          meterReady = true;
        } catch (error) {
          const lookupError = describe(error);
          log.warn("Stripe meter lookup failed; the claimed billing rows stay due", {
            error: lookupError,
            rows: rows.length,
          });
          summary.retrying += rows.length;
          await settle(
            handle.db,
            rows,
            rows.map(() => ({ kind: "retry", error: lookupError })),
            now,
          );
          return summary;
        }
      }
      const outcomes = await sendAll(stripe, eventName, rows, now);
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.kind === "sent") summary.sent++;
        else if (outcome.kind === "retry") summary.retrying++;
        else {
          summary.failed++;
          log.error("billing outbox row failed", { outbox_id: rows[i]?.id, error: outcome.error });
        }
      }
      await settle(handle.db, rows, outcomes, now);
    }
    if (claimedTotal >= maxRows) {
      const left = await handle.db.execute<{ more: boolean }>(
        sql`SELECT EXISTS (SELECT 1 FROM billing_outbox WHERE ${due}) AS more`,
      );
      summary.more = left.rows[0]?.more === true;
    }
    return summary;
  } finally {
    await handle.close();
  }
}

/**
 * A report that goes on: the cron runs it, and so does the queue consumer on a report message.
 * If rows are still due when this invocation's budget is spent, it enqueues a report message.
 */
export async function reportAndChain(
  env: Bindings,
  now: number = Date.now(),
  maxRows: number = MAX_ROWS_PER_RUN,
  options: ReportOptions = {},
): Promise<ReportSummary> {
  const summary = await reportUsage(env, now, maxRows, options);
  if (summary.more) {
    log.info("billing rows still due after this run; chaining a report through the queue", {
      sent: summary.sent,
    });
    await env.USAGE_QUEUE.send(REPORT_MESSAGE, { contentType: "json" });
  }
  return summary;
}
