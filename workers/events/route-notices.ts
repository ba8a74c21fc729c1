/**
 * `route.deprecated`: when a route of the table (`ROUTES`) gets a deprecation or sunset date, the
 * cron tells every tenant that called it in the last 30 days (by the daily usage rollups, whose
 * `route` is the route's prefix). Each route's dates are announced once: `route_notices` holds the
 * `prefix` and `<deprecation>|<sunset>` fingerprint of every announcement, written in the
 * transaction that records the events (first, so a concurrent run waits on it and then finds it).
 * Changing a route's dates later announces again; a tenant that first calls the route after the
 * announcement is not told (the `Deprecation` and `Sunset` response headers tell it).
 */
import { sql } from "drizzle-orm";
import { configOf } from "../config";
import type { Route } from "../edge/route-table";
import type { Bindings } from "../env";
import { log } from "../log";
import { type Db, openDb } from "../shared/db";
import type { NewEvent } from "./catalog";
import { dispatchDeliveries, recordEvents } from "./emit";

const DAY_MS = 86_400_000;
/** How far back a call makes a tenant one to tell. */
export const ROUTE_CALLERS_WINDOW_MS = 30 * DAY_MS;

const iso = (date: string | undefined) => (date === undefined ? null : new Date(date).toISOString());

/** A dated route's announcement: its dates normalised to UTC, so only a change of dates announces again. */
function noticeOf(route: Route) {
  const deprecation = iso(route.deprecation);
  const sunset = iso(route.sunset);
  return { prefix: route.prefix, deprecation, sunset, fingerprint: `${deprecation ?? ""}|${sunset ?? ""}` };
}

/** A short, stable digest of a route's announcement, for its events' ids. */
async function digest(text: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(hash.slice(0, 10), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Announces every dated route of `routes` not announced with these dates yet, to the tenants that
 * called it in the 30 days before `now`. Returns how many events it emitted.
 */
export async function announceDeprecatedRoutes(
  env: Pick<Bindings, "EVENTS_QUEUE">,
  db: Db,
  routes: readonly Route[],
  now: number = Date.now(),
): Promise<number> {
  const notices = routes.filter((r) => r.deprecation || r.sunset).map(noticeOf);
  if (notices.length === 0) return 0;
  const known = await db.execute<{ prefix: string; fingerprint: string }>(sql`
    SELECT prefix, fingerprint FROM route_notices
    WHERE prefix = ANY (${sql.param(notices.map((n) => n.prefix))}::text[])`);
  const announced = new Set(known.rows.map((r) => `${r.prefix} ${r.fingerprint}`));
  /** The first daily rollup bucket (UTC day) inside the window. */
  const since = new Date(Math.floor((now - ROUTE_CALLERS_WINDOW_MS) / DAY_MS) * DAY_MS);
  let emitted = 0;
  for (const notice of notices.filter((n) => !announced.has(`${n.prefix} ${n.fingerprint}`))) {
    const suffix = await digest(`${notice.prefix}|${notice.fingerprint}`);
    const recorded = await db.transaction(async (tx) => {
      const claimed = await tx.execute(sql`
        INSERT INTO route_notices (prefix, fingerprint, created_at)
        VALUES (${notice.prefix}, ${notice.fingerprint}, ${new Date(now)})
        ON CONFLICT DO NOTHING`);
      if (!claimed.rowCount) return { events: 0, deliveries: [] };
      const callers = await tx.execute<{ tenant_id: string; last_day: string | Date }>(sql`
        SELECT tenant_id, max(bucket_start) AS last_day
        FROM usage_rollups
        WHERE granularity = 'day' AND route = ${notice.prefix} AND requests > 0
          AND bucket_start >= ${since}
        GROUP BY tenant_id`);
      const events = callers.rows.map(
        (c): NewEvent<"route.deprecated"> => ({
          id: `evt_routedep_${c.tenant_id}_${suffix}`,
          tenantId: c.tenant_id,
          type: "route.deprecated",
          data: {
            route: notice.prefix,
            deprecation: notice.deprecation,
            sunset: notice.sunset,
            lastCalledAt: new Date(c.last_day).toISOString(),
          },
          at: new Date(now),
        }),
      );
      return { events: events.length, deliveries: await recordEvents(tx, events) };
    });
    emitted += recorded.events;
    await dispatchDeliveries(env, recorded.deliveries);
  }
  return emitted;
}

/** The cron's step over the configured route table: errors are logged, never thrown (the next minute tries again). */
export async function routeNoticesCron(env: Bindings, now: number = Date.now()): Promise<void> {
  const handle = openDb(env);
  try {
    await announceDeprecatedRoutes(env, handle.db, configOf(env).routes, now);
  } catch (error) {
    log.error("route deprecation notices failed", { error: String(error).slice(0, 300) });
  } finally {
    await handle.close();
  }
}
