/**
 * Webhook delivery to tenants' receivers (workers/events/): Standard Webhooks signatures that the
 * official `standardwebhooks` package verifies, the same `webhook-id` and body on every retry, the
 * retry schedule to the dead-letter store, 410 and 5 days of failures disabling an endpoint (event
 * and mail), Retry-After, no redirects, the timeout, the SSRF re-check at delivery time, the claim,
 * and the sweep that re-sends a delivery whose queue message was lost.
 *
 * Endpoints are written straight into the table (the endpoints API is tested elsewhere); events are
 * recorded with `recordEvents`, as every emitter does. Queue sends are captured, not delivered, so a
 * test decides when each message arrives: through the Worker's real queue handler, with the clock
 * moved to the due time, or by calling `attemptDelivery` with a chosen `now`.
 */
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { asc, eq } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, inject, it, vi } from "vitest";
import { tenants, webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../schema";
import type { Bindings } from "../../workers/env";
import { type AttemptOptions, attemptDelivery } from "../../workers/events/attempt-delivery";
import type { NewEvent } from "../../workers/events/catalog";
import { sweepDeliveries } from "../../workers/events/delivery-sweep";
import { recordEvents } from "../../workers/events/emit";
import type { DeliverMessage } from "../../workers/events/messages";
import { RETRY_DELAYS_S } from "../../workers/events/retry-schedule";
import worker from "../../workers/index";
import { newId } from "../../workers/shared/ids";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { seedTenant, uniq } from "../support/gateway";
import type { HookArrival, HookScript } from "../support/tenant-webhook-receiver";

const HOOKS = inject("hooksUrl");
const MAILBOX = inject("mailboxUrl");
const clock = controlledClock();
const DAY_MS = 86_400_000;

// ---- the receiver ----

const hookPath = () => `/hooks/${uniq()}`;

async function script(path: string, s: Omit<HookScript, "path">): Promise<void> {
  const res = await fetch(`${HOOKS}/control/script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, ...s }),
  });
  expect(res.status).toBe(204);
}

async function received(path: string): Promise<HookArrival[]> {
  const res = await fetch(`${HOOKS}/control/received?path=${encodeURIComponent(path)}`);
  return (await res.json()) as HookArrival[];
}

// ---- the queue: every send captured, delivered by the test ----

interface Sent {
  body: DeliverMessage;
  delaySeconds?: number;
}
let sent: Sent[] = [];

beforeEach(() => {
  sent = [];
  vi.spyOn(env.EVENTS_QUEUE, "send").mockImplementation(async (body, options) => {
    sent.push({ body: body as DeliverMessage, delaySeconds: options?.delaySeconds });
    return {} as QueueSendResponse;
  });
  vi.spyOn(env.EVENTS_QUEUE, "sendBatch").mockImplementation(async (messages) => {
    for (const m of messages) sent.push({ body: m.body as DeliverMessage, delaySeconds: m.delaySeconds });
    return {} as QueueSendBatchResponse;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const sentFor = (deliveryId: string) => sent.filter((s) => s.body.deliveryId === deliveryId);

let sequence = 0;
/** Delivers `deliver` messages to the Worker's real queue handler as one batch of the events queue. */
async function deliverMessages(deliveryIds: string[], bindings: Bindings = env) {
  const batch = createMessageBatch<unknown>(
    "gateway-events",
    deliveryIds.map((deliveryId) => ({
      id: `evq-${++sequence}`,
      timestamp: new Date(),
      attempts: 1,
      body: { kind: "deliver", deliveryId } satisfies DeliverMessage,
    })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return await getQueueResult(batch, ctx);
}

// ---- fixtures ----

const newSecret = () => `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;

async function tenantWithEmail(): Promise<{ tenantId: string; email: string }> {
  const t = await seedTenant();
  const email = `${t.slug}@tenant.test`;
  await withDb((db) => db.update(tenants).set({ email }).where(eq(tenants.id, t.tenantId)));
  return { tenantId: t.tenantId, email };
}

async function endpoint(
  tenantId: string,
  url: string,
  over: Partial<typeof webhookEndpoints.$inferInsert> = {},
): Promise<{ id: string; secret: string }> {
  const row = { id: newId("whep"), tenantId, url, secret: newSecret(), ...over };
  await withDb((db) => db.insert(webhookEndpoints).values(row));
  return { id: row.id, secret: row.secret };
}

const keyCreated = (tenantId: string, at?: Date): NewEvent<"key.created"> => ({
  id: newId("evt"),
  tenantId,
  type: "key.created",
  data: { keyId: newId("key"), env: "live", prefix: "gw_live_ab12", name: "ci" },
  at,
});

/** Records events as every emitter does; returns the new deliveries' ids. */
const emit = (events: NewEvent[]) => withDb((db) => db.transaction((tx) => recordEvents(tx, events)));

/** A tenant with one endpoint at a fresh receiver path, and one recorded event's delivery to it. */
async function oneDelivery(over: Partial<typeof webhookEndpoints.$inferInsert> = {}) {
  const path = hookPath();
  const t = await seedTenant();
  const ep = await endpoint(t.tenantId, `${HOOKS}${path}`, over);
  const event = keyCreated(t.tenantId);
  const [deliveryId] = await emit([event]);
  if (!deliveryId) throw new Error("no delivery recorded");
  return { path, tenantId: t.tenantId, endpoint: ep, event, deliveryId };
}

const attempt = (deliveryId: string, options: AttemptOptions = {}, bindings: Bindings = env) =>
  withDb((db) => attemptDelivery(bindings, db, deliveryId, options));

const deliveryRow = async (id: string) => {
  const [row] = await withDb((db) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id)));
  if (!row) throw new Error(`no delivery ${id}`);
  return row;
};
const attemptRows = (deliveryId: string) =>
  withDb((db) =>
    db
      .select()
      .from(webhookAttempts)
      .where(eq(webhookAttempts.deliveryId, deliveryId))
      .orderBy(asc(webhookAttempts.attempt)),
  );
const endpointRow = async (id: string) => {
  const [row] = await withDb((db) => db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)));
  if (!row) throw new Error(`no endpoint ${id}`);
  return row;
};

/** `standardwebhooks`' own check of one arrival (throws WebhookVerificationError when it fails). */
const verify = (secret: string, a: HookArrival) => new Webhook(secret).verify(a.body, a.headers);

describe("webhook delivery", () => {
  it("a receiver that fails twice then recovers gets the event 3 times: same webhook-id and body, each signature verified, succeeded after 3 attempts", async () => {
    const d = await oneDelivery();
    const start = clock.set(Date.now());
    await script(d.path, { statuses: [500, 503] });

    // Attempt 1 at once, through the queue handler.
    expect((await deliverMessages([d.deliveryId])).explicitAcks).toHaveLength(1);
    let row = await deliveryRow(d.deliveryId);
    expect(row).toMatchObject({ status: "pending", attempts: 1, lastStatus: 500 });
    const [retry1] = sentFor(d.deliveryId);
    expect(retry1?.delaySeconds).toBeGreaterThanOrEqual(RETRY_DELAYS_S[0] * 0.9);
    expect(retry1?.delaySeconds).toBeLessThanOrEqual(Math.ceil(RETRY_DELAYS_S[0] * 1.1));
    expect(row.nextAttemptAt?.getTime()).toBe(start + (retry1?.delaySeconds ?? 0) * 1000);
    expect((await endpointRow(d.endpoint.id)).failingSince?.getTime()).toBe(start);
    const [first] = await received(d.path);
    expect(verify(d.endpoint.secret, first as HookArrival)).toMatchObject({ type: "key.created" });

    // Attempt 2 when due: the retry message arrives then.
    clock.set(row.nextAttemptAt?.getTime() ?? 0);
    await deliverMessages([d.deliveryId]);
    row = await deliveryRow(d.deliveryId);
    expect(row).toMatchObject({ status: "pending", attempts: 2, lastStatus: 503 });
    const retry2 = sentFor(d.deliveryId)[1];
    expect(retry2?.delaySeconds).toBeGreaterThanOrEqual(RETRY_DELAYS_S[1] * 0.9);
    expect(retry2?.delaySeconds).toBeLessThanOrEqual(RETRY_DELAYS_S[1] * 1.1);
    expect(verify(d.endpoint.secret, (await received(d.path))[1] as HookArrival)).toBeTruthy();

    clock.set(row.nextAttemptAt?.getTime() ?? 0);
    await deliverMessages([d.deliveryId]);
    const arrivals = await received(d.path);
    expect(arrivals.map((a) => a.status)).toEqual([500, 503, 200]);
    expect(verify(d.endpoint.secret, arrivals[2] as HookArrival)).toBeTruthy();

    // One event: one webhook-id and one body on every attempt; each attempt its own timestamp.
    expect(new Set(arrivals.map((a) => a.headers["webhook-id"]))).toEqual(new Set([d.event.id]));
    expect(new Set(arrivals.map((a) => a.body)).size).toBe(1);
    expect(JSON.parse(arrivals[0]?.body ?? "")).toEqual({
      type: "key.created",
      timestamp: d.event.at?.toISOString() ?? expect.any(String),
      data: d.event.data,
    });
    expect(new Set(arrivals.map((a) => a.headers["webhook-timestamp"])).size).toBe(3);
    expect(arrivals[0]?.headers).toMatchObject({
      "content-type": "application/json",
      "user-agent": expect.stringContaining("edge-gateway"),
    });

    expect(await deliveryRow(d.deliveryId)).toMatchObject({
      status: "succeeded",
      attempts: 3,
      lastStatus: 200,
      nextAttemptAt: null,
    });
    const log = await attemptRows(d.deliveryId);
    expect(log.map((a) => [a.attempt, a.status])).toEqual([
      [1, 500],
      [2, 503],
      [3, 200],
    ]);
    expect(log[2]?.responseExcerpt).toBe('{"received":true}');
    expect(sentFor(d.deliveryId)).toHaveLength(2);
    expect((await endpointRow(d.endpoint.id)).failingSince).toBeNull();
  });

  it("signs with both secrets during a rotation, new first; after it only the new one", async () => {
    const oldSecret = newSecret();
    const d = await oneDelivery({
      previousSecret: oldSecret,
      previousSecretUntil: new Date(Date.now() + DAY_MS),
    });
    const now = clock.set(Date.now());
    await script(d.path, { statuses: [500] });

    await attempt(d.deliveryId, { now: new Date(now) });
    const [during] = await received(d.path);
    const signatures = during?.headers["webhook-signature"]?.split(" ") ?? [];
    expect(signatures).toHaveLength(2);
    expect(signatures[0]).toBe(
      new Webhook(d.endpoint.secret).sign(d.event.id ?? "", new Date(now), during?.body ?? ""),
    );
    expect(verify(d.endpoint.secret, during as HookArrival)).toBeTruthy();
    expect(verify(oldSecret, during as HookArrival)).toBeTruthy();

    // The rotation's 24 h are over by the next attempt.
    const after = clock.set(now + DAY_MS);
    const row = await deliveryRow(d.deliveryId);
    await withDb((db) =>
      db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: new Date(after) })
        .where(eq(webhookDeliveries.id, row.id)),
    );
    expect(await attempt(d.deliveryId, { now: new Date(after) })).toMatchObject({ result: "succeeded" });
    const later = (await received(d.path))[1] as HookArrival;
    expect(later.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(verify(d.endpoint.secret, later)).toBeTruthy();
    expect(() => verify(oldSecret, later)).toThrow(/No matching signature/);
  });

  it("410 Gone disables the endpoint, cancels its pending deliveries, emits webhook.endpoint.disabled to the other endpoints and mails the tenant", async () => {
    const t = await tenantWithEmail();
    const gonePath = hookPath();
    const otherPath = hookPath();
    const gone = await endpoint(t.tenantId, `${HOOKS}${gonePath}`);
    const other = await endpoint(t.tenantId, `${HOOKS}${otherPath}`);
    await script(gonePath, { statuses: [410] });
    const first = keyCreated(t.tenantId);
    const second = keyCreated(t.tenantId);
    await emit([first, second]);
    const deliveries = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, gone.id)),
    );
    const firstDelivery = deliveries.find((x) => x.eventId === first.id);
    const secondDelivery = deliveries.find((x) => x.eventId === second.id);

    expect(await attempt(firstDelivery?.id ?? "")).toMatchObject({ result: "disabled", status: 410 });

    expect(await endpointRow(gone.id)).toMatchObject({ enabled: false, disabledReason: "gone" });
    expect(await deliveryRow(firstDelivery?.id ?? "")).toMatchObject({
      status: "cancelled",
      lastStatus: 410,
    });
    expect(await deliveryRow(secondDelivery?.id ?? "")).toMatchObject({ status: "cancelled", attempts: 0 });
    // The cancelled delivery is not attempted when its message arrives.
    expect(await attempt(secondDelivery?.id ?? "")).toEqual({ result: "skipped" });
    expect(await received(gonePath)).toHaveLength(1);

    // The notice: stored for the tenant (the portal lists it), delivered to the other endpoint only.
    const notices = await withDb((db) =>
      db.select().from(webhookEvents).where(eq(webhookEvents.tenantId, t.tenantId)),
    );
    const notice = notices.find((e) => e.type === "webhook.endpoint.disabled");
    expect(notice?.data).toEqual({ endpointId: gone.id, url: `${HOOKS}${gonePath}`, reason: "gone" });
    const noticeDeliveries = await withDb((db) =>
      db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.eventId, notice?.id ?? "")),
    );
    expect(noticeDeliveries.map((x) => x.endpointId)).toEqual([other.id]);
    expect(sentFor(noticeDeliveries[0]?.id ?? "")).toHaveLength(1);
    await attempt(noticeDeliveries[0]?.id ?? "");
    const [arrival] = await received(otherPath);
    expect(JSON.parse(arrival?.body ?? "")).toMatchObject({
      type: "webhook.endpoint.disabled",
      data: notice?.data,
    });

    const mail = (await (
      await fetch(`${MAILBOX}/messages?to=${encodeURIComponent(t.email)}`)
    ).json()) as Array<{
      subject: string;
      text: string;
    }>;
    expect(mail).toHaveLength(1);
    expect(mail[0]?.subject).toMatch(/webhook endpoint was disabled/i);
    expect(mail[0]?.text).toContain(`${HOOKS}${gonePath}`);
    expect(mail[0]?.text).toContain("410 Gone");
  });

  it("honours Retry-After on 429 (seconds) and 503 (HTTP date) when longer than the schedule, capped at 10 h", async () => {
    const d = await oneDelivery();
    const d2 = await oneDelivery();
    const d3 = await oneDelivery();
    const d4 = await oneDelivery();
    const now = Date.now();
    await script(d.path, { statuses: [429], retryAfter: "3600" });
    expect(await attempt(d.deliveryId, { now: new Date(now) })).toMatchObject({
      result: "retry",
      delaySeconds: 3600,
    });
    expect((await deliveryRow(d.deliveryId)).nextAttemptAt?.getTime()).toBe(now + 3_600_000);
    expect(sentFor(d.deliveryId).map((s) => s.delaySeconds)).toEqual([3600]);

    const at = new Date(now + 2 * 3_600_000);
    await script(d2.path, { statuses: [503], retryAfter: at.toUTCString() });
    // The date has whole seconds: the wait is rounded up to the second.
    expect(await attempt(d2.deliveryId, { now: new Date(now) })).toMatchObject({
      result: "retry",
      delaySeconds: 7200,
    });
    expect((await deliveryRow(d2.deliveryId)).nextAttemptAt?.getTime()).toBe(now + 7_200_000);

    await script(d3.path, { statuses: [429], retryAfter: String(30 * 3600) });
    expect(await attempt(d3.deliveryId, { now: new Date(now) })).toMatchObject({ delaySeconds: 36_000 });

    // Shorter than the schedule's 5 s: the schedule wins.
    await script(d4.path, { statuses: [429], retryAfter: "1" });
    const short = await attempt(d4.deliveryId, { now: new Date(now), random: 0.5 });
    expect(short).toMatchObject({ delaySeconds: 5 });
  });

  it("does not follow a redirect: a 3xx is a failed attempt and the target receives nothing", async () => {
    const d = await oneDelivery();
    const target = hookPath();
    await script(d.path, { statuses: [302], location: `${HOOKS}${target}` });
    expect(await attempt(d.deliveryId)).toMatchObject({ result: "retry", status: 302 });
    expect(await received(target)).toEqual([]);
    const [row] = await attemptRows(d.deliveryId);
    expect(row).toMatchObject({ status: 302, error: `redirect not followed (location: ${HOOKS}${target})` });
  });

  it("a receiver slower than the timeout fails the attempt (no status, the time it waited)", async () => {
    const d = await oneDelivery();
    await script(d.path, { statuses: [200], delayMs: 2_000 });
    expect(await attempt(d.deliveryId, { timeoutMs: 300 })).toMatchObject({ result: "retry", status: null });
    const [row] = await attemptRows(d.deliveryId);
    expect(row).toMatchObject({ status: null, error: "no response within 300 ms" });
    expect(row?.latencyMs).toBeGreaterThanOrEqual(300);
    expect(row?.latencyMs).toBeLessThan(2_000);
  });

  it("keeps only the first 1 KiB of the response", async () => {
    const d = await oneDelivery();
    await script(d.path, { statuses: [500], body: "é".repeat(3000) });
    await attempt(d.deliveryId);
    const [row] = await attemptRows(d.deliveryId);
    // 512 two-byte characters: exactly 1024 bytes.
    expect(row?.responseExcerpt).toBe("é".repeat(512));
  });

  it("walks the whole schedule: 8 failed attempts at ≈ 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10 %), then dead", async () => {
    const d = await oneDelivery();
    await script(d.path, { statuses: Array(9).fill(500) });
    let now = Date.now();
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const outcome = await attempt(d.deliveryId, { now: new Date(now) });
      outcomes.push(outcome.result);
      const row = await deliveryRow(d.deliveryId);
      if (i < 7) {
        const waited = ((row.nextAttemptAt?.getTime() ?? 0) - now) / 1000;
        const planned = RETRY_DELAYS_S[i] as number;
        expect(waited).toBeGreaterThanOrEqual(Math.floor(planned * 0.9));
        expect(waited).toBeLessThanOrEqual(Math.ceil(planned * 1.1));
        // Not due a second before: a message arriving early sends nothing.
        expect(await attempt(d.deliveryId, { now: new Date(now + (waited - 2) * 1000) })).toEqual({
          result: "skipped",
        });
        now = row.nextAttemptAt?.getTime() ?? 0;
      }
    }
    expect(outcomes).toEqual([...Array(7).fill("retry"), "dead"]);
    expect(await deliveryRow(d.deliveryId)).toMatchObject({
      status: "dead",
      attempts: 8,
      nextAttemptAt: null,
    });
    expect((await attemptRows(d.deliveryId)).map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(sentFor(d.deliveryId)).toHaveLength(7);
    // Dead is final: another message sends nothing.
    expect(await attempt(d.deliveryId, { now: new Date(now + DAY_MS) })).toEqual({ result: "skipped" });
    expect(await received(d.path)).toHaveLength(8);
  });

  it("disables an endpoint whose every attempt has failed for 5 days, once, with the event and a mail", async () => {
    const t = await tenantWithEmail();
    const path = hookPath();
    const ep = await endpoint(t.tenantId, `${HOOKS}${path}`);
    await script(path, { statuses: Array(10).fill(500) });
    const [first] = await emit([keyCreated(t.tenantId)]);
    const t0 = Date.now();
    await attempt(first ?? "", { now: new Date(t0) });
    expect((await endpointRow(ep.id)).failingSince?.getTime()).toBe(t0);

    // Just under 5 days: still on.
    const [second] = await emit([keyCreated(t.tenantId)]);
    expect(await attempt(second ?? "", { now: new Date(t0 + 5 * DAY_MS - 1000) })).toMatchObject({
      result: "retry",
    });
    expect((await endpointRow(ep.id)).enabled).toBe(true);

    const [third] = await emit([keyCreated(t.tenantId)]);
    expect(await attempt(third ?? "", { now: new Date(t0 + 5 * DAY_MS) })).toMatchObject({
      result: "disabled",
    });
    expect(await endpointRow(ep.id)).toMatchObject({ enabled: false, disabledReason: "failing" });
    for (const id of [first, second, third]) expect((await deliveryRow(id ?? "")).status).toBe("cancelled");

    const notices = await withDb((db) =>
      db.select().from(webhookEvents).where(eq(webhookEvents.tenantId, t.tenantId)),
    );
    expect(notices.filter((e) => e.type === "webhook.endpoint.disabled").map((e) => e.data)).toEqual([
      { endpointId: ep.id, url: `${HOOKS}${path}`, reason: "failing" },
    ]);
    const mail = (await (
      await fetch(`${MAILBOX}/messages?to=${encodeURIComponent(t.email)}`)
    ).json()) as unknown[];
    expect(mail).toHaveLength(1);

    // Off: a new event is not delivered there at all.
    expect(await emit([keyCreated(t.tenantId)])).toEqual([]);

    // Switched on again (the tenant fixed its receiver), its streak starts afresh: one more failure
    // five days after the first one does not switch it off again.
    expect((await endpointRow(ep.id)).failingSince).toBeNull();
    await withDb((db) =>
      db
        .update(webhookEndpoints)
        .set({ enabled: true, disabledReason: null })
        .where(eq(webhookEndpoints.id, ep.id)),
    );
    const [afterFix] = await emit([keyCreated(t.tenantId)]);
    expect(await attempt(afterFix ?? "", { now: new Date(t0 + 5 * DAY_MS + 60_000) })).toMatchObject({
      result: "retry",
    });
    expect((await endpointRow(ep.id)).enabled).toBe(true);
  });

  it("a delivery whose success clears failingSince is not disabled 5 days after an older failure", async () => {
    const d = await oneDelivery();
    await script(d.path, { statuses: [500] });
    const t0 = Date.now();
    await attempt(d.deliveryId, { now: new Date(t0) });
    const [next] = await emit([keyCreated(d.tenantId)]);
    await attempt(next ?? "");
    expect((await endpointRow(d.endpoint.id)).failingSince).toBeNull();
    await script(d.path, { statuses: [500] });
    const [later] = await emit([keyCreated(d.tenantId)]);
    expect(await attempt(later ?? "", { now: new Date(t0 + 6 * DAY_MS) })).toMatchObject({ result: "retry" });
    expect(await endpointRow(d.endpoint.id)).toMatchObject({
      enabled: true,
      failingSince: new Date(t0 + 6 * DAY_MS),
    });
  });

  it("refuses an SSRF target stored straight in the table at delivery time: a failed attempt, no request", async () => {
    const d = await oneDelivery({ url: "http://10.0.0.1/hook" });
    expect(await attempt(d.deliveryId)).toMatchObject({ result: "retry", status: null });
    const [row] = await attemptRows(d.deliveryId);
    expect(row).toMatchObject({
      status: null,
      latencyMs: 0,
      error: "URL refused: must not be a private, link-local or reserved address",
    });

    // Without WEBHOOK_ALLOW_LOCALHOST the test receiver itself (http, loopback) is refused: it gets nothing.
    const local = await oneDelivery();
    const production = { ...env, WEBHOOK_ALLOW_LOCALHOST: "false" } as Bindings;
    expect(await attempt(local.deliveryId, {}, production)).toMatchObject({ result: "retry", status: null });
    expect((await attemptRows(local.deliveryId))[0]?.error).toBe("URL refused: must be an https:// URL");
    expect(await received(local.path)).toEqual([]);
  });

  it("two consumers holding the same delivery send it once", async () => {
    const d = await oneDelivery();
    await script(d.path, { statuses: [200], delayMs: 300 });
    const outcomes = await Promise.all([attempt(d.deliveryId), attempt(d.deliveryId)]);
    expect(outcomes.map((o) => o.result).sort()).toEqual(["skipped", "succeeded"]);
    expect(await received(d.path)).toHaveLength(1);
    expect(await attemptRows(d.deliveryId)).toHaveLength(1);
  });

  it("cancels, without a request, a delivery whose endpoint was disabled before it was sent", async () => {
    const d = await oneDelivery();
    await withDb((db) =>
      db
        .update(webhookEndpoints)
        .set({ enabled: false, disabledReason: "tenant" })
        .where(eq(webhookEndpoints.id, d.endpoint.id)),
    );
    expect(await attempt(d.deliveryId)).toEqual({ result: "cancelled" });
    expect((await deliveryRow(d.deliveryId)).status).toBe("cancelled");
    expect(await received(d.path)).toEqual([]);
  });

  it("delivers a test send to its endpoint even while the endpoint is off, without starting a failing streak", async () => {
    const path = hookPath();
    const t = await seedTenant();
    const ep = await endpoint(t.tenantId, `${HOOKS}${path}`, { enabled: false, disabledReason: "tenant" });
    await script(path, { statuses: [500] });
    const test: NewEvent<"webhook.test"> = {
      tenantId: t.tenantId,
      type: "webhook.test",
      data: { endpointId: ep.id, message: "hello" },
    };
    const [deliveryId] = await withDb((db) =>
      db.transaction((tx) => recordEvents(tx, [test], { endpointId: ep.id })),
    );
    expect(await attempt(deliveryId ?? "")).toMatchObject({ result: "retry", status: 500 });
    expect(await received(path)).toHaveLength(1);
    expect(await endpointRow(ep.id)).toMatchObject({ enabled: false, failingSince: null });
  });

  it("retries the message while Postgres is down (nothing sent), and delivers once it is back", async () => {
    const d = await oneDelivery();
    const down = await deliverMessages([d.deliveryId], { ...env, PG_WS_PROXY: "127.0.0.1:1/v1" });
    expect(down.explicitAcks).toEqual([]);
    expect(down.retryMessages).toHaveLength(1);
    expect(await received(d.path)).toEqual([]);

    expect((await deliverMessages([d.deliveryId])).explicitAcks).toHaveLength(1);
    expect(await received(d.path)).toHaveLength(1);
    expect((await deliveryRow(d.deliveryId)).status).toBe("succeeded");
  });

  it("a slow receiver does not hold up the other deliveries of its batch", async () => {
    const slow = await oneDelivery();
    const fast = await oneDelivery();
    await script(slow.path, { statuses: [200], delayMs: 1_500 });
    const result = await deliverMessages([slow.deliveryId, fast.deliveryId]);
    expect(result.explicitAcks).toHaveLength(2);
    const [slowArrival] = await received(slow.path);
    const [fastArrival] = await received(fast.path);
    // Sent one after the other, the fast one would arrive after the slow one's 1.5 s answer.
    expect((fastArrival?.at ?? 0) - (slowArrival?.at ?? 0)).toBeLessThan(1_000);
  });

  it("the cron's sweep re-sends a pending delivery whose message was lost, once a minute at most", async () => {
    const lost = await oneDelivery();
    const recent = await oneDelivery();
    const overdue = new Date(Date.now() - 2 * 60_000);
    await withDb((db) =>
      db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: overdue })
        .where(eq(webhookDeliveries.id, lost.deliveryId)),
    );
    sent = [];

    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);

    expect(sentFor(lost.deliveryId)).toHaveLength(1);
    // Not overdue by a minute yet: its own message is still on its way.
    expect(sentFor(recent.deliveryId)).toEqual([]);
    // The next minute's sweep leaves it alone while the new message is on its way.
    expect(await sweepDeliveries(env, { now: new Date(Date.now() + 30_000) })).not.toContain(lost.deliveryId);

    await deliverMessages([lost.deliveryId]);
    expect(await received(lost.path)).toHaveLength(1);
    expect((await deliveryRow(lost.deliveryId)).status).toBe("succeeded");
  });
});
