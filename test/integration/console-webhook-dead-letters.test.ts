/**
 * The console's dead-letters page, webhook part: a delivery whose retries are exhausted is listed
 * with its tenant, event, endpoint, attempts and last error; Replay (a CSRF-guarded form) queues it
 * again — pending, `replays` + 1, one queue message, an audit entry — and a replay on a disabled
 * endpoint shows the service's refusal on the page (409), changing nothing. Queue sends are
 * captured, not delivered, so no consumer races the assertions.
 */
import { env } from "cloudflare:workers";
import { and, eq, sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { auditActions, webhookDeliveries, webhookEndpoints } from "../../schema";
import { recordEvents } from "../../workers/events/emit";
import { newId } from "../../workers/shared/ids";
import { withDb } from "../support/db";
import { seedTenant, uniq } from "../support/gateway";
import { consoleSession, csrfOf } from "../support/web";

let sent: unknown[] = [];

beforeEach(() => {
  sent = [];
  vi.spyOn(env.EVENTS_QUEUE, "sendBatch").mockImplementation(async (messages) => {
    for (const m of messages) sent.push(m.body);
    return {} as QueueSendBatchResponse;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * A tenant's endpoint and one `key.created` delivery to it, made dead as the engine leaves it; then
 * `later` applied to the endpoint (disabling it first would record no delivery at all).
 */
async function deadDelivery(later: Partial<typeof webhookEndpoints.$inferInsert> = {}) {
  const t = await seedTenant();
  const endpoint = {
    id: newId("whep"),
    tenantId: t.tenantId,
    url: `${env.ORIGIN_URL}/hooks/${uniq()}`,
    secret: `whsec_${btoa("x".repeat(32))}`,
  };
  await withDb((db) => db.insert(webhookEndpoints).values(endpoint));
  const [deliveryId] = await withDb((db) =>
    db.transaction((tx) =>
      recordEvents(tx, [
        {
          tenantId: t.tenantId,
          type: "key.created",
          data: { keyId: newId("key"), env: "live", prefix: "gw_live_ab12", name: "ci" },
        },
      ]),
    ),
  );
  if (!deliveryId) throw new Error("the event recorded no delivery");
  await withDb((db) =>
    db
      .update(webhookDeliveries)
      .set({
        status: "dead",
        attempts: 8,
        lastStatus: 503,
        lastError: "receiver answered 503",
        nextAttemptAt: null,
        updatedAt: sql`now()`,
      })
      .where(eq(webhookDeliveries.id, deliveryId)),
  );
  if (Object.keys(later).length > 0)
    await withDb((db) => db.update(webhookEndpoints).set(later).where(eq(webhookEndpoints.id, endpoint.id)));
  return { tenantId: t.tenantId, endpoint, deliveryId };
}

const deliveryRow = (id: string) =>
  withDb(async (db) => (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id)))[0]);

const rowOf = (html: string, id: string) =>
  new RegExp(`<tr data-webhook-delivery-id="${id}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";

describe("the console's webhook dead letters", () => {
  it("lists a dead delivery with its tenant, event, endpoint, attempts and last error, newest death first", async () => {
    const older = await deadDelivery();
    const { tenantId, endpoint, deliveryId } = await deadDelivery();
    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    expect(html).toContain("Webhook deliveries");
    const row = rowOf(html, deliveryId);
    expect(row).toContain(tenantId);
    expect(row).toContain("key.created");
    expect(row).toContain(endpoint.url);
    expect(row).toContain(">8<");
    expect(row).toContain("503");
    expect(row).toContain("receiver answered 503");
    expect(html.indexOf(`data-webhook-delivery-id="${deliveryId}"`)).toBeLessThan(
      html.indexOf(`data-webhook-delivery-id="${older.deliveryId}"`),
    );
    // The page's other sections are still there.
    expect(html).toContain("Usage the queue could not store");
    expect(html).toContain("Failed Stripe reports");
  });

  it("replays a dead delivery: pending, due now, replays + 1, queued once, audited; gone from the list", async () => {
    const { tenantId, deliveryId } = await deadDelivery();
    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    const res = await web.post("/console/dead-letters/webhooks/replay", {
      _csrf: csrfOf(html),
      id: deliveryId,
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/console/dead-letters?notice=webhook_replayed");
    const after = await deliveryRow(deliveryId);
    expect(after).toMatchObject({ status: "pending", replays: 1, attempts: 8 });
    expect(after?.nextAttemptAt?.getTime() ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(Date.now());
    expect(sent).toEqual([{ kind: "deliver", deliveryId }]);
    const page = await web.page("/console/dead-letters?notice=webhook_replayed");
    expect(page).toContain("Webhook delivery queued again.");
    expect(rowOf(page, deliveryId)).toBe("");
    const entries = await withDb((db) =>
      db
        .select()
        .from(auditActions)
        .where(and(eq(auditActions.chain, tenantId), eq(auditActions.action, "webhook_delivery.retry"))),
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]?.actorType).toBe("console");
    expect(entries[0]?.changes).toMatchObject({
      status: { before: "dead", after: "pending" },
      replays: { before: 0, after: 1 },
    });
  });

  it("refuses a replay without the session's CSRF value (403), changing nothing", async () => {
    const { deliveryId } = await deadDelivery();
    const web = await consoleSession();
    await web.page("/console/dead-letters");
    const forms: Record<string, string>[] = [{ id: deliveryId }, { id: deliveryId, _csrf: "0".repeat(64) }];
    for (const form of forms)
      expect((await web.post("/console/dead-letters/webhooks/replay", form)).status).toBe(403);
    expect(await deliveryRow(deliveryId)).toMatchObject({ status: "dead", replays: 0 });
    expect(sent).toEqual([]);
  });

  it("shows why a replay on a disabled endpoint is refused (409 with the page), never a 500", async () => {
    const { deliveryId } = await deadDelivery({ enabled: false, disabledReason: "failing" });
    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    const res = await web.post("/console/dead-letters/webhooks/replay", {
      _csrf: csrfOf(html),
      id: deliveryId,
    });
    const page = await res.text();
    expect(res.status, page).toBe(409);
    expect(page).toMatch(
      /class="notice notice-error"[^>]*>The webhook endpoint is disabled; enable it before retrying\./,
    );
    expect(rowOf(page, deliveryId)).toContain("Replay");
    expect(await deliveryRow(deliveryId)).toMatchObject({ status: "dead", replays: 0 });
    expect(sent).toEqual([]);
    const unknown = await web.post("/console/dead-letters/webhooks/replay", {
      _csrf: csrfOf(html),
      id: "dlv_nope",
    });
    expect(unknown.status).toBe(404);
  });
});
