/**
 * The cron's safety net for webhook deliveries (every minute): a pending delivery whose attempt is
 * more than a minute overdue and not held by a live attempt lost its `deliver` message (a failed
 * send, a queue outage) and is queued again. This is what makes a lost message harmless.
 *
 * Each swept delivery's due time is moved to now, so the next sweep leaves it alone for another
 * minute while its new message is on its way; a duplicate message is harmless anyway (the attempt
 * claims the delivery). Bounded: at most `SWEEP_BATCH` deliveries per run, oldest due first.
 */
import { sql } from "drizzle-orm";
import type { Bindings } from "../env";
import { log } from "../log";
import { openDb } from "../shared/db";
import { dispatchDeliveries } from "./emit";

/** How overdue a pending delivery must be before its message counts as lost. */
export const SWEEP_OVERDUE_MS = 60_000;
/** Deliveries re-queued per run at most. */
export const SWEEP_BATCH = 500;

/** Re-queues the overdue, unclaimed pending deliveries; returns their ids. */
export async function sweepDeliveries(
  env: Bindings,
  options: { now?: Date; limit?: number } = {},
): Promise<string[]> {
  const now = options.now ?? new Date();
  const cutoff = new Date(now.getTime() - SWEEP_OVERDUE_MS).toISOString();
  const handle = openDb(env);
  try {
    const swept = await handle.db.execute<{ id: string }>(sql`
      UPDATE webhook_deliveries SET next_attempt_at = ${now.toISOString()}::timestamptz
      WHERE id IN (
        SELECT id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at < ${cutoff}::timestamptz
          AND (claimed_until IS NULL OR claimed_until < ${now.toISOString()}::timestamptz)
        ORDER BY next_attempt_at
        LIMIT ${options.limit ?? SWEEP_BATCH}
        FOR UPDATE SKIP LOCKED)
      RETURNING id`);
    const ids = swept.rows.map((r) => r.id);
    if (ids.length > 0) log.warn("overdue webhook deliveries re-queued", { deliveries: ids.length });
    await dispatchDeliveries(env, ids);
    return ids;
  } finally {
    await handle.close();
  }
}
