/**
 * Settles prepaid usage into the credit ledger: one `usage` row per tenant-hour, the negative sum
 * of the hour's billable live usage rows — the units the tenant object spent that hour. Run by the
 * cron; idempotent (the row id is derived from tenant and hour, `ON CONFLICT DO NOTHING`), so running
 * it every minute writes each tenant-hour once.
 *
 * Which hours: those ended at least `SETTLE_AFTER_MS` ago (the queue has delivered their events),
 * after the tenant's last settled hour, and the usage since the tenant's first balance entry (before
 * it, a prepaid tenant had no credits to spend). Only tenants on a prepaid plan now are settled.
 * An event arriving for an hour already settled is not settled again: reconciliation's credits
 * column shows it (`settledDrift`).
 */
import { sql } from "drizzle-orm";
import type { Bindings } from "../../env";
import { log } from "../../log";
import { type Db, openDb } from "../../shared/db";
import { repairCredits } from "./ledger";

const HOUR_MS = 3_600_000;
/** How long after an hour ends it is settled: the queue's delivery and retries are well within it. */
export const SETTLE_AFTER_MS = 15 * 60_000;

/** The start of the first hour not yet settleable at `now`. */
export const settleBefore = (now: number): number => Math.floor((now - SETTLE_AFTER_MS) / HOUR_MS) * HOUR_MS;

/** Writes the usage rows of every settleable tenant-hour; returns how many it wrote. */
export async function settleCreditUsage(db: Db, now: number = Date.now()): Promise<number> {
  const at = new Date(now);
  const result = await db.execute(sql`
    WITH prepaid AS (
      SELECT t.id AS tenant_id,
        (SELECT min(created_at) FROM credit_ledger l WHERE l.tenant_id = t.id AND l.kind <> 'usage') AS first_at,
        (SELECT max(hour) + interval '1 hour' FROM credit_ledger l WHERE l.tenant_id = t.id AND l.kind = 'usage') AS next_hour
      FROM tenants t JOIN plans p ON p.id = t.plan_id
      WHERE p.pricing->>'model' = 'prepaid'
    )
    INSERT INTO credit_ledger (id, tenant_id, kind, units, hour, applied_at, created_at)
    SELECT 'cu_' || u.tenant_id || '_' || extract(epoch FROM date_trunc('hour', u.ts))::bigint,
      u.tenant_id, 'usage', -sum(u.units), date_trunc('hour', u.ts), ${at}, ${at}
    FROM usage_events u JOIN prepaid ON prepaid.tenant_id = u.tenant_id
    WHERE prepaid.first_at IS NOT NULL AND u.billable AND u.env = 'live'
      AND u.ts >= greatest(prepaid.first_at, coalesce(prepaid.next_hour, prepaid.first_at))
      AND u.ts < ${new Date(settleBefore(now))}
    GROUP BY u.tenant_id, date_trunc('hour', u.ts)
    HAVING sum(u.units) > 0
    ON CONFLICT (id) DO NOTHING`);
  return result.rowCount ?? 0;
}

/**
 * The cron's credits step: settle the usage of finished hours, then re-apply grants the tenant
 * object has not confirmed (ledger.ts). Errors are logged, never thrown: the next minute retries.
 */
export async function creditsCron(env: Bindings, now: number = Date.now()): Promise<void> {
  const handle = openDb(env);
  try {
    await settleCreditUsage(handle.db, now);
    await repairCredits(env, handle.db, now);
  } catch (error) {
    log.error("credits cron failed", { error: String(error) });
  } finally {
    await handle.close();
  }
}
