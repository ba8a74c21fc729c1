/**
 * The dead-letter store and the console's failed-deliveries page: a poison usage message reaches
 * `dead_letters` once however often the DLQ delivers it, is retried while Postgres is down, and a
 * replay of its (fixed) body stores its events once; failed Stripe reports go back in line and are
 * then sent; a tenant whose billing sync failed is listed and re-synced.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { deadLetters, tenants, usageEvents } from "../../schema";
import type { Bindings } from "../../workers/env";
import worker from "../../workers/index";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { newId } from "../../workers/shared/ids";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { seedTenant } from "../support/gateway";
import { deliver, eventsIn, runCron } from "../support/metering";
import { usageEvent } from "../support/usage-events";
import { consoleSession, csrfOf } from "../support/web";

const clock = controlledClock();
const HOUR_MS = 3_600_000;

const ev = (over: Partial<UsageEvent> = {}) =>
  usageEvent({ id: newId("req"), ts: new Date().toISOString(), ...over });

/** Delivers `bodies` to the Worker's queue handler as a batch of the usage DLQ, with the given message ids. */
async function deliverDlq(messages: { id: string; body: unknown }[], bindings: Bindings = env) {
  const batch = createMessageBatch<unknown>(
    "gateway-usage-dlq",
    messages.map((m) => ({ ...m, timestamp: new Date(), attempts: 1 })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return await getQueueResult(batch, ctx);
}

/** What the usage consumer sends to the DLQ for `bodies` (captured, not delivered). */
async function deadLettered(bodies: unknown[]): Promise<unknown[]> {
  const sent: unknown[] = [];
  const dlq = vi.spyOn(env.USAGE_DLQ, "send").mockImplementation(async (body) => {
    sent.push(body);
    return {} as QueueSendResponse;
  });
  try {
    await deliver(bodies);
  } finally {
    dlq.mockRestore();
  }
  return sent;
}

const rowsOf = (id: string) => withDb((db) => db.select().from(deadLetters).where(eq(deadLetters.id, id)));

describe("the dead-letter store", () => {
  it("stores a poison message once, even delivered twice or dead-lettered twice, with the consumer's reason", async () => {
    const t = await seedTenant();
    const bad = { v: 2, events: [{ ...ev({ tenantId: t.tenantId, keyId: t.keyId }), status: "teapot" }] };
    const [letter] = await deadLettered([bad]);
    expect(letter).toMatchObject({ body: bad });

    const first = await deliverDlq([{ id: `dlq-${newId("req")}`, body: letter }]);
    expect(first.explicitAcks).toHaveLength(1);
    // The DLQ redelivers the same message; and the consumer dead-letters the same usage message
    // again (its ack was lost), under a new DLQ message id.
    const again = await deliverDlq([
      { id: `dlq-${newId("req")}`, body: letter },
      { id: `dlq-${newId("req")}`, body: letter },
    ]);
    expect(again.explicitAcks).toHaveLength(2);
    const { messageId } = letter as { messageId: string };
    const rows = await rowsOf(`gateway-usage:${messageId}`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ queue: "gateway-usage", events: 1, body: bad, replays: 0 });
    expect(rows[0]?.reason).toMatch(/^invalid usage event \[0\]: status:/);
  });

  it("keeps a message the queue gave up on (no reason of its own) once per DLQ message id", async () => {
    const t = await seedTenant();
    const body = {
      v: 2,
      events: [ev({ tenantId: t.tenantId, keyId: t.keyId }), ev({ tenantId: t.tenantId, keyId: t.keyId })],
    };
    const id = `dlq-${newId("req")}`;
    await deliverDlq([{ id, body }]);
    await deliverDlq([{ id, body }]);
    const rows = await rowsOf(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ reason: null, events: 2, body });
  });

  it("retries while Postgres is unreachable, and stores the message once it is back", async () => {
    const id = `dlq-${newId("req")}`;
    const body = { v: 2, events: [ev()] };
    const down = await deliverDlq([{ id, body }], { ...env, PG_WS_PROXY: "127.0.0.1:1/v1" });
    expect(down.explicitAcks).toHaveLength(0);
    expect(down.retryMessages).toHaveLength(1);
    expect(await rowsOf(id)).toHaveLength(0);
    const back = await deliverDlq([{ id, body }]);
    expect(back.explicitAcks).toHaveLength(1);
    expect(await rowsOf(id)).toHaveLength(1);
  });
});

describe("the dead letters page", () => {
  it("lists what, why and when; Replay of a fixed body stores its events once, however often replayed", async () => {
    clock.set("2027-07-01T10:00:00.000Z");
    const t = await seedTenant();
    const bad = { v: 2, events: [{ ...ev({ tenantId: t.tenantId, keyId: t.keyId }), units: -1 }] };
    const [letter] = await deadLettered([bad]);
    await deliverDlq([{ id: `dlq-${newId("req")}`, body: letter }]);
    const id = `gateway-usage:${(letter as { messageId: string }).messageId}`;

    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    const row = new RegExp(`<tr data-dead-letter-id="${id}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
    expect(row).toContain(t.tenantId);
    expect(row).toContain("2027-07-01 10:00 UTC");
    expect(row).toMatch(/invalid usage event \[0\]: units:/);

    // The operator fixes the body (the event's units), then replays it — twice.
    const fixed = {
      v: 2,
      events: [ev({ tenantId: t.tenantId, keyId: t.keyId }), ev({ tenantId: t.tenantId, keyId: t.keyId })],
    };
    await withDb((db) => db.update(deadLetters).set({ body: fixed }).where(eq(deadLetters.id, id)));
    const sent: unknown[] = [];
    const send = vi.spyOn(env.USAGE_QUEUE, "send").mockImplementation(async (body) => {
      sent.push(body);
      return {} as QueueSendResponse;
    });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await web.post("/console/dead-letters/replay", { _csrf: csrfOf(html), id });
        expect(res.status).toBe(303);
        expect(res.headers.get("location")).toBe("/console/dead-letters?notice=replayed");
      }
    } finally {
      send.mockRestore();
    }
    expect(sent).toEqual([fixed, fixed]);
    for (const body of sent) expect((await deliver([body])).explicitAcks).toHaveLength(1);
    const stored = await withDb((db) =>
      db.select().from(usageEvents).where(eq(usageEvents.tenantId, t.tenantId)),
    );
    expect(stored.map((e) => e.id).sort()).toEqual(
      eventsIn(fixed)
        .map((e) => e.id)
        .sort(),
    );
    const [after] = await rowsOf(id);
    expect(after?.replays).toBe(2);
    expect(await web.page("/console/dead-letters?notice=replayed")).toContain("Dead letter replayed");

    const unknown = await web.post("/console/dead-letters/replay", { _csrf: csrfOf(html), id: "nope" });
    expect(unknown.status).toBe(404);
  });

  it("puts a failed Stripe report back in line (attempts reset, due now), and the reporter then sends it", async () => {
    // The real clock: the Stripe stand-in refuses meter events from its future.
    const t = await seedTenant();
    const hour = new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 5 * HOUR_MS);
    const outboxId = `gwh:${t.tenantId}:${hour.getTime() / 1000}:0`;
    await withDb((db) =>
      db.execute(sql`
        INSERT INTO billing_outbox (id, tenant_id, hour, seq, units, closed_at, state, attempts, next_attempt_at, last_error)
        VALUES (${outboxId}, ${t.tenantId}, ${hour}, 0, 42, ${hour}, 'failed', 7, ${hour}, 'StripeInvalidRequestError: refused')`),
    );
    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    const row = new RegExp(`<tr data-outbox-id="${outboxId}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
    expect(row).toContain(t.slug);
    expect(row).toContain("42");
    expect(row).toContain("StripeInvalidRequestError: refused");

    const res = await web.post("/console/dead-letters/reports/retry", { _csrf: csrfOf(html), id: outboxId });
    expect(res.status).toBe(303);
    const outbox = () =>
      withDb(
        async (db) =>
          (
            await db.execute<{
              state: string;
              attempts: number;
              last_error: string | null;
              next_attempt_at: Date;
            }>(
              sql`SELECT state, attempts, last_error, next_attempt_at FROM billing_outbox WHERE id = ${outboxId}`,
            )
          ).rows[0],
      );
    const queued = await outbox();
    expect(queued).toMatchObject({ state: "pending", attempts: 0, last_error: null });
    expect(new Date(queued?.next_attempt_at ?? 0).getTime()).toBeLessThanOrEqual(Date.now());
    // Only a failed row can be retried.
    expect(
      (await web.post("/console/dead-letters/reports/retry", { _csrf: csrfOf(html), id: outboxId })).status,
    ).toBe(404);
    await runCron();
    expect((await outbox())?.state).toBe("sent");
  });

  it("lists a tenant whose billing sync failed, with the error; Retry sync brings it to ok", async () => {
    const t = await seedTenant();
    await withDb((db) =>
      db
        .update(tenants)
        .set({ billingSync: "failed", billingError: "StripeInvalidRequestError: no such price" })
        .where(eq(tenants.id, t.tenantId)),
    );
    const web = await consoleSession();
    const html = await web.page("/console/dead-letters");
    const row = new RegExp(`<tr data-tenant-id="${t.tenantId}">([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? "";
    expect(row).toContain("no such price");
    const res = await web.post(`/console/tenants/${t.tenantId}/billing-sync`, { _csrf: csrfOf(html) });
    expect(res.status).toBe(303);
    const after = await withDb((db) => db.query.tenants.findFirst({ where: eq(tenants.id, t.tenantId) }));
    expect(after?.billingSync).toBe("ok");
    expect(await web.page("/console/dead-letters")).not.toContain(`<tr data-tenant-id="${t.tenantId}">`);
  });
});
