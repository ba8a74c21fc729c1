/**
 * README "Usage alerts": `usage.threshold.reached` at 80 % and 100 % of the daily and monthly quota
 * and of the prepaid credits since the last top-up — decided by the admission that crosses the
 * mark, inside the tenant object, exactly once per threshold and period under any concurrency, and
 * handed to the events queue from an outbox that survives a failed send.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { webhookEvents } from "../../schema/webhooks";
import type { EventsQueueMessage } from "../../workers/events/messages";
import { controlledClock } from "../support/clock";
import { grant, prepaidTenant } from "../support/credits";
import { withDb } from "../support/db";
import { bearer, createKey, gateway, seedTenant, uniq } from "../support/gateway";

const clock = controlledClock();

/** The events queue's sends, watched in every test (they still go through unless a test says otherwise). */
let send: MockInstance<Queue<EventsQueueMessage>["send"]>;
beforeEach(() => {
  send = vi.spyOn(env.EVENTS_QUEUE, "send");
});
afterEach(() => {
  send.mockRestore();
});

/** The tenant's events in the `events` messages the queue accepted. */
function sentEvents(tenantId: string) {
  return send.mock.calls.flatMap(([body], i) =>
    send.mock.settledResults[i]?.type === "fulfilled" && body.kind === "events"
      ? body.events.filter((e) => e.tenantId === tenantId)
      : [],
  );
}

interface Alert {
  id: string;
  data: { window: string; threshold: number; env: string; period: string; used: number; limit: number };
  createdAt: string;
}

/** The tenant's stored `usage.threshold.reached` events, in a stable order. */
async function storedAlerts(tenantId: string): Promise<Alert[]> {
  const rows = await withDb((db) =>
    db
      .select({ id: webhookEvents.id, data: webhookEvents.data, createdAt: webhookEvents.createdAt })
      .from(webhookEvents)
      .where(and(eq(webhookEvents.tenantId, tenantId), eq(webhookEvents.type, "usage.threshold.reached"))),
  );
  const key = (a: Alert) =>
    `${a.data.period}|${a.data.window}|${a.data.env}|${String(a.data.threshold).padStart(3)}`;
  return (rows as unknown as Alert[]).sort((a, b) => key(a).localeCompare(key(b)));
}

/** What the tenant object still holds in its outbox (decided, not yet accepted by the queue). */
const pending = (tenantId: string) => env.TENANT.getByName(tenantId).pendingEvents();

/**
 * Waits until the object's outbox is empty and `count` alerts are stored (the events queue's
 * consumer stores them), then gives a late send time to show up: every alert was sent exactly once
 * (the consumer dedupes ids, so the sends are where a threshold decided twice would show).
 */
async function alertsOnce(tenantId: string, count: number): Promise<Alert[]> {
  await runDurableObjectAlarm(env.TENANT.getByName(tenantId));
  await vi.waitFor(
    async () => {
      expect(await pending(tenantId)).toBe(0);
      expect(await storedAlerts(tenantId)).toHaveLength(count);
    },
    { timeout: 10_000, interval: 200 },
  );
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const stored = await storedAlerts(tenantId);
  expect(
    sentEvents(tenantId)
      .map((e) => e.id)
      .sort(),
  ).toEqual(stored.map((a) => a.id).sort());
  return stored;
}

const data = (
  window: string,
  threshold: number,
  period: string,
  used: number,
  limit: number,
  e = "live",
) => ({
  window,
  threshold,
  env: e,
  period,
  used,
  limit,
});

describe("usage alerts at admission", () => {
  it("200 concurrent requests against a daily quota of 100: 100 admitted, each threshold fired exactly once", async () => {
    clock.set("2026-11-20T12:00:00Z");
    const t = await seedTenant({ plan: { dailyQuota: 100, monthlyQuota: 125 } });
    const marker = uniq();
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => gateway(`/v1/${marker}/${i}`, { headers: bearer(t.key) })),
    );
    await Promise.all(responses.map((r) => r.text()));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(100);
    expect(responses.filter((r) => r.status === 429)).toHaveLength(100);

    const alerts = await alertsOnce(t.tenantId, 3);
    expect(alerts.map((a) => a.data)).toEqual([
      data("daily", 80, "2026-11-20", 80, 100),
      data("daily", 100, "2026-11-20", 100, 100),
      // 100 of 125 this month: 80 %, not yet 100 %.
      data("monthly", 80, "2026-11", 100, 125),
    ]);
    // Decided by the admission that crossed the mark, at its time.
    expect(alerts.every((a) => new Date(a.createdAt).toISOString() === "2026-11-20T12:00:00.000Z")).toBe(
      true,
    );
    expect(alerts.every((a) => /^evt_[0-9a-f]{64}$/.test(a.id))).toBe(true);
  }, 60_000);

  it("test keys spend their own counters, and their alerts say env test", async () => {
    clock.set("2026-11-21T08:00:00Z");
    const t = await seedTenant({
      plan: {
        dailyQuota: 100,
        sandboxLimits: { burstCapacity: 1000, refillTokens: 1000, refillPeriodSeconds: 1, dailyQuota: 5 },
      },
    });
    const testKey = await createKey(t.tenantId, { env: "test" });
    for (let i = 0; i < 4; i++)
      expect((await gateway(`/v1/${uniq()}/${i}`, { headers: bearer(testKey.key) })).status).toBe(200);
    const alerts = await alertsOnce(t.tenantId, 1);
    expect(alerts.map((a) => a.data)).toEqual([data("daily", 80, "2026-11-21", 4, 5, "test")]);
  }, 30_000);
});

describe("usage alerts over time (the tenant object's clock)", () => {
  const at = (iso: string) => Date.parse(iso);
  /** Newer than any config the admin API pushed to the object (versions are ms of the change). */
  const VERSION = 4_000_000_000_000;
  const input = (keyId: string, dailyQuota: number, version = 1): AdmitInput => ({
    keyId,
    keyLimit: null,
    cost: 1,
    config: {
      version: VERSION + version,
      status: "active",
      limits: {
        burstCapacity: 1000,
        refillTokens: 1000,
        refillPeriodSeconds: 1,
        dailyQuota,
        monthlyQuota: null,
      },
    },
    idempotency: null,
  });

  it("a new period fires again; a limit raised mid-period does not fire a threshold twice", async () => {
    const t = await seedTenant();
    const stub = env.TENANT.getByName(t.tenantId);
    const outcomes = await runInDurableObject(stub, (o: TenantLimiter) => {
      const run = (n: number, iso: string, limit: number, version = 1) =>
        Array.from({ length: n }, () => o.decide(input(t.keyId, limit, version), at(iso)).outcome);
      return [
        ...run(10, "2026-11-10T09:00:00Z", 10), // day 1: 80 at the 8th, 100 at the 10th
        ...run(10, "2026-11-11T09:00:00Z", 10), // day 2: both again
        ...run(8, "2026-11-12T09:00:00Z", 10), // day 3: 80 at the 8th …
        ...run(8, "2026-11-12T10:00:00Z", 20, 2), // … the limit goes to 20: 16 of 20 is 80 % again, already fired
        ...run(4, "2026-11-12T11:00:00Z", 20, 2), // 20 of 20: 100 fires (it had not)
      ];
    });
    expect(outcomes.every((o) => o === "admitted")).toBe(true);
    const alerts = await alertsOnce(t.tenantId, 6);
    expect(alerts.map((a) => a.data)).toEqual([
      data("daily", 80, "2026-11-10", 8, 10),
      data("daily", 100, "2026-11-10", 10, 10),
      data("daily", 80, "2026-11-11", 8, 10),
      data("daily", 100, "2026-11-11", 10, 10),
      data("daily", 80, "2026-11-12", 8, 10),
      data("daily", 100, "2026-11-12", 20, 20),
    ]);
    expect(alerts.map((a) => a.createdAt && new Date(a.createdAt).toISOString())).toEqual([
      "2026-11-10T09:00:00.000Z",
      "2026-11-10T09:00:00.000Z",
      "2026-11-11T09:00:00.000Z",
      "2026-11-11T09:00:00.000Z",
      "2026-11-12T09:00:00.000Z",
      "2026-11-12T11:00:00.000Z",
    ]);
  }, 30_000);

  it("a failing queue keeps the alerts in the outbox, retries with backoff, and delivers them once it recovers", async () => {
    const t = await seedTenant();
    const stub = env.TENANT.getByName(t.tenantId);
    send.mockRejectedValue(new Error("queue unavailable"));
    await runInDurableObject(stub, (o: TenantLimiter) => {
      o.decide(input(t.keyId, 1), at("2026-11-15T09:00:00Z"));
    });
    // The alarm fires at once, the send fails: both events stay, and the next try is backed off.
    await vi.waitFor(() => expect(send).toHaveBeenCalled(), { timeout: 5_000 });
    const state = await runInDurableObject(stub, async (_o: TenantLimiter, s) => ({
      pending: s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM event_outbox").one().n,
      alarm: await s.storage.getAlarm(),
    }));
    expect(state.pending).toBe(2);
    expect(state.alarm).not.toBeNull();
    expect(await storedAlerts(t.tenantId)).toEqual([]);
    // Still down at the next try: still kept.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await pending(t.tenantId)).toBe(2);
    // The queue recovers (the spy goes back to the real send; the failed calls are forgotten).
    send.mockReset();
    const alerts = await alertsOnce(t.tenantId, 2);
    expect(alerts.map((a) => a.data)).toEqual([
      data("daily", 80, "2026-11-15", 1, 1),
      data("daily", 100, "2026-11-15", 1, 1),
    ]);
  }, 30_000);

  it("the alarm keeps its other duties: once the outbox is sent, it is set for the next idempotency expiry", async () => {
    const t = await seedTenant();
    const stub = env.TENANT.getByName(t.tenantId);
    await runInDurableObject(stub, async (o: TenantLimiter) => {
      const admitted = await o.admit({
        ...input(t.keyId, 1),
        idempotency: { key: "k-1", fingerprint: "fp", leaseMs: 60_000 },
      });
      expect(admitted.outcome).toBe("admitted");
    });
    expect(await alertsOnce(t.tenantId, 2)).toHaveLength(2);
    const { alarm, expiresAt } = await runInDurableObject(stub, async (_o: TenantLimiter, s) => ({
      alarm: await s.storage.getAlarm(),
      expiresAt: s.storage.sql.exec<{ t: number }>("SELECT expires_at AS t FROM idempotency").one().t,
    }));
    expect(alarm).toBe(expiresAt);
  }, 30_000);
});

describe("credit alerts (prepaid)", () => {
  it("spending a top-up fires 80 % and 100 % once each; a new top-up starts a new period", async () => {
    const t = await prepaidTenant();
    const first = await grant(t.tenantId, 10);
    const marker = uniq();
    const spend = async (n: number) => {
      const responses = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          gateway(`/v1/${marker}/${uniq()}${i}`, { headers: bearer(t.key) }),
        ),
      );
      await Promise.all(responses.map((r) => r.text()));
      return responses.map((r) => r.status);
    };
    const statuses = await spend(15);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(5);
    expect((await alertsOnce(t.tenantId, 2)).map((a) => a.data)).toEqual([
      data("credits", 80, first.entry.id, 8, 10),
      data("credits", 100, first.entry.id, 10, 10),
    ]);

    const second = await grant(t.tenantId, 5);
    expect(await spend(3)).toEqual([200, 200, 200]);
    expect(await spend(1)).toEqual([200]);
    expect(await spend(1)).toEqual([200]);
    const alerts = await alertsOnce(t.tenantId, 4);
    expect(alerts.filter((a) => a.data.period === second.entry.id).map((a) => a.data)).toEqual([
      data("credits", 80, second.entry.id, 4, 5),
      data("credits", 100, second.entry.id, 5, 5),
    ]);
  }, 60_000);
});
