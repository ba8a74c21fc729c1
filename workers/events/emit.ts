/**
 * Emitting an event: store it and fan it out to the tenant's endpoints in the caller's transaction
 * (`recordEvents`), then, once that has committed, put one `deliver` message per delivery on the
 * events queue (`dispatchDeliveries`). A change and the events it causes commit together, so an
 * event is never lost to a crash between the two; a queue send that fails is not lost either: the
 * cron's sweep (workers/events/) re-dispatches every pending delivery whose attempt is overdue.
 */
import { sql } from "drizzle-orm";
import type { Bindings } from "../env";
import { log } from "../log";
import type { Db, Tx } from "../shared/db";
import { newId } from "../shared/ids";
import type { NewEvent } from "./catalog";
import type { DeliverMessage } from "./messages";

/** A queue's `sendBatch` takes at most 100 messages. */
const SEND_BATCH = 100;

/**
 * Stores `events` (an id already stored is skipped: emitting the same fact twice is harmless; an
 * event naming no existing tenant is dropped) and
 * creates a pending delivery for each enabled endpoint of the event's tenant that subscribes to its
 * type — or, with `endpointId`, for that endpoint only (a test send), enabled or not. Returns the
 * new deliveries' ids, for `dispatchDeliveries` after the commit.
 */
export async function recordEvents(
  tx: Db | Tx,
  events: readonly NewEvent[],
  options: { endpointId?: string } = {},
): Promise<string[]> {
  if (events.length === 0) return [];
  const rows = events.map((e) => ({
    id: e.id ?? newId("evt"),
    tenantId: e.tenantId,
    type: e.type,
    data: e.data,
    createdAt: (e.at ?? new Date()).toISOString(),
  }));
  const inserted = await tx.execute<{ id: string; tenant_id: string; type: string }>(sql`
    INSERT INTO webhook_events (id, tenant_id, type, data, created_at)
    SELECT e.id, e."tenantId", e.type, e.data, e."createdAt"
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      AS e(id text, "tenantId" text, type text, data jsonb, "createdAt" timestamptz)
    -- An event of a tenant that does not exist (an object named by something else) is dropped, not
    -- retried forever: it has no endpoints to go to.
    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = e."tenantId")
    ON CONFLICT (id) DO NOTHING
    RETURNING id, tenant_id, type`);
  if (inserted.rows.length === 0) return [];
  const ids = inserted.rows.map((r) => r.id);
  const endpointFilter = options.endpointId
    ? sql`w.id = ${options.endpointId}`
    : sql`w.enabled AND (cardinality(w.event_types) = 0 OR e.type = ANY (w.event_types))`;
  const deliveries = await tx.execute<{ id: string }>(sql`
    INSERT INTO webhook_deliveries (id, tenant_id, event_id, endpoint_id, status, next_attempt_at)
    SELECT 'dlv_' || lower(replace(gen_random_uuid()::text, '-', '')), e.tenant_id, e.id, w.id, 'pending', now()
    FROM webhook_events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id
    WHERE e.id = ANY (${sql.param(ids)}::text[]) AND ${endpointFilter}
    ON CONFLICT (event_id, endpoint_id) DO NOTHING
    RETURNING id`);
  return deliveries.rows.map((r) => r.id);
}

/**
 * Puts a `deliver` message per delivery on the events queue. Never throws: a delivery whose message
 * is lost is picked up by the sweep once its attempt is overdue.
 */
export async function dispatchDeliveries(
  env: Pick<Bindings, "EVENTS_QUEUE">,
  deliveryIds: readonly string[],
): Promise<void> {
  for (let i = 0; i < deliveryIds.length; i += SEND_BATCH) {
    const chunk = deliveryIds.slice(i, i + SEND_BATCH);
    try {
      await env.EVENTS_QUEUE.sendBatch(
        chunk.map((deliveryId) => ({
          body: { kind: "deliver", deliveryId } satisfies DeliverMessage,
          contentType: "json" as const,
        })),
      );
    } catch (error) {
      log.warn("webhook deliveries not queued; the sweep will send them", {
        deliveries: chunk.length,
        error: String(error).slice(0, 200),
      });
    }
  }
}

/** Records `events` in their own transaction and dispatches their deliveries: for callers outside a transaction. */
export async function emitEvents(
  env: Pick<Bindings, "EVENTS_QUEUE">,
  db: Db,
  events: readonly NewEvent[],
): Promise<void> {
  const ids = await db.transaction(async (tx) => await recordEvents(tx, events));
  await dispatchDeliveries(env, ids);
}
