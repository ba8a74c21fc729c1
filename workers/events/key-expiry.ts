/**
 * `key.expiring`: the cron tells a tenant 7 days ahead that one of its keys stops working. Every
 * minute it looks for unrevoked keys whose `expires_at` falls within the next 7 days and emits one
 * event per key and expiry, under a deterministic id (`evt_keyexp_<key id>_<expiry, epoch s>`): a
 * key already announced is skipped by the query, and emitting it again would store nothing, so each
 * expiry is announced once however often the cron runs — and a changed expiry is announced again.
 *
 * Keys that only end a rotation's grace period (a key with a successor, `rotated_from_id`) are
 * skipped: `key.rotated` already told the tenant when the old key stops.
 */
import { sql } from "drizzle-orm";
import type { Bindings } from "../env";
import { log } from "../log";
import { type Db, openDb } from "../shared/db";
import type { NewEvent } from "./catalog";
import { emitEvents } from "./emit";

/** How far ahead an expiry is announced. */
export const KEY_EXPIRY_NOTICE_MS = 7 * 86_400_000;
/** Keys announced per run at most; the rest follow the next minute. */
const BATCH = 200;

/** The event id of a key's expiry notice, in SQL (so the query can skip keys already announced). */
const noticeId = sql`'evt_keyexp_' || k.id || '_' || floor(extract(epoch FROM k.expires_at))::bigint`;

/** Emits `key.expiring` for every key expiring within the notice period not yet announced; returns how many. */
export async function announceExpiringKeys(
  env: Pick<Bindings, "EVENTS_QUEUE">,
  db: Db,
  now: number = Date.now(),
): Promise<number> {
  const rows = await db.execute<{ event_id: string; id: string; tenant_id: string; expires_at: string }>(sql`
    SELECT ${noticeId} AS event_id, k.id, k.tenant_id, k.expires_at
    FROM api_keys k
    WHERE k.revoked_at IS NULL
      AND k.expires_at > ${new Date(now)}
      AND k.expires_at <= ${new Date(now + KEY_EXPIRY_NOTICE_MS)}
      AND NOT EXISTS (SELECT 1 FROM api_keys s WHERE s.rotated_from_id = k.id)
      AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = ${noticeId})
    ORDER BY k.expires_at
    LIMIT ${BATCH}`);
  const events = rows.rows.map(
    (r): NewEvent<"key.expiring"> => ({
      id: r.event_id,
      tenantId: r.tenant_id,
      type: "key.expiring",
      data: { keyId: r.id, expiresAt: new Date(r.expires_at).toISOString() },
      at: new Date(now),
    }),
  );
  await emitEvents(env, db, events);
  return events.length;
}

/** The cron's step: errors are logged, never thrown (the next minute tries again). */
export async function keyExpiryCron(env: Bindings, now: number = Date.now()): Promise<void> {
  const handle = openDb(env);
  try {
    await announceExpiringKeys(env, handle.db, now);
  } catch (error) {
    log.error("key expiry notices failed", { error: String(error).slice(0, 300) });
  } finally {
    await handle.close();
  }
}
