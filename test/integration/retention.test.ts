/**
 * README "Retention": the cron prunes each kind of record on its own schedule, in bounded batches,
 * and only expired rows go — a row exactly at its cutoff, anything younger, a pending webhook
 * delivery (and its event and attempts) stay; an audit chain still verifies from its prune anchor;
 * reconciliation of an hour whose raw events are gone still balances (from the rollups).
 */

import { env } from "cloudflare:workers";
import { and, eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  auditActions,
  auditRequests,
  portalCodes,
  usageEvents,
  usageRollups,
  webhookAttempts,
  webhookDeliveries,
  webhookEndpoints,
  webhookEvents,
  webSessions,
} from "../../schema";
import { appendToChains } from "../../workers/audit/append";
import { type ActionContent, GENESIS, type RequestContent, verifyEntries } from "../../workers/audit/chain";
import { creditsCron } from "../../workers/billing/credits/settlement";
import { DEFAULT_RETENTION } from "../../workers/config";
import { emptyHistogram } from "../../workers/metering/latency-histogram";
import { cutoffs } from "../../workers/retention/policies";
import { type KindReport, type PruneLimits, pruneExpired } from "../../workers/retention/run";
import { controlledClock } from "../support/clock";
import { grant, prepaidTenant, settlesAt } from "../support/credits";
import { type TestDb, withDb } from "../support/db";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver, reconciliation, runCron } from "../support/metering";

const clock = controlledClock();

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** Three rows per statement, one statement per kind per run: a backlog takes several runs. */
const SMALL: PruneLimits = { batchSize: 3, maxBatchesPerKind: 1, budgetMs: 60_000 };

/** Runs retention at `now` until every kind is drained; returns every run's reports. */
async function pruneUntilDrained(db: TestDb, now: number): Promise<KindReport[][]> {
  const runs: KindReport[][] = [];
  for (let run = 0; run < 300; run++) {
    const reports = await pruneExpired(db, DEFAULT_RETENTION, now, SMALL);
    runs.push(reports);
    expect(reports.filter((r) => r.error)).toEqual([]);
    if (reports.every((r) => r.drained)) return runs;
  }
  throw new Error("retention did not drain in 300 runs");
}

const batchesOf = (runs: KindReport[][], kind: KindReport["kind"]) =>
  runs.map((reports) => reports.find((r) => r.kind === kind)?.batches ?? []);

function usageRow(tenantId: string, keyId: string, id: string, ts: Date) {
  return {
    id,
    tenantId,
    keyId,
    env: "live" as const,
    method: "GET",
    route: "/v1/",
    status: 200,
    billable: true,
    units: 1,
    bytesIn: 0,
    bytesOut: 0,
    latencyMs: 5,
    ts,
  };
}

function rollupRow(tenantId: string, granularity: "hour" | "day", route: string, bucketStart: Date) {
  return {
    tenantId,
    granularity,
    bucketStart,
    route,
    statusClass: 2,
    requests: 1,
    billableRequests: 1,
    billableUnits: 1,
    bytesIn: 0,
    bytesOut: 0,
    latencyHistogram: emptyHistogram(),
  };
}

describe("retention", () => {
  it("prunes only expired rows of every kind, at most 3 per statement over several runs; the boundary row and younger ones stay", async () => {
    const t = await seedTenant();
    const now = Date.now();
    const cut = cutoffs(now, DEFAULT_RETENTION);
    const at = (base: Date, ms: number) => new Date(base.getTime() + ms);
    const id = (name: string) => `${name}-${uniq()}`;

    await withDb(async (db) => {
      // Usage events: 7 expired (so 3 + 3 + 1), one exactly at the cutoff, two younger.
      const events = {
        expired: [1, 2, 3, 4, 5, 6, 7].map((d) => id(`old${d}`)),
        kept: [id("boundary"), id("young"), id("now")],
      };
      await db
        .insert(usageEvents)
        .values([
          ...events.expired.map((eid, i) =>
            usageRow(t.tenantId, t.keyId, eid, at(cut.usage_events, -(i + 1) * DAY + 1)),
          ),
          usageRow(t.tenantId, t.keyId, events.kept[0] as string, cut.usage_events),
          usageRow(t.tenantId, t.keyId, events.kept[1] as string, at(cut.usage_events, 1)),
          usageRow(t.tenantId, t.keyId, events.kept[2] as string, new Date(now)),
        ]);

      // Rollups, both granularities, 25 months: expired by a millisecond or by months; the boundary; younger.
      const rollups = [
        rollupRow(t.tenantId, "hour", "/old-1/", at(cut.usage_rollups, -1)),
        rollupRow(t.tenantId, "hour", "/old-2/", at(cut.usage_rollups, -40 * DAY)),
        rollupRow(t.tenantId, "day", "/old-3/", at(cut.usage_rollups, -1)),
        rollupRow(t.tenantId, "day", "/old-4/", at(cut.usage_rollups, -400 * DAY)),
        rollupRow(t.tenantId, "hour", "/boundary/", cut.usage_rollups),
        rollupRow(t.tenantId, "day", "/boundary/", cut.usage_rollups),
        rollupRow(t.tenantId, "hour", "/young/", at(cut.usage_rollups, HOUR)),
      ];
      await db.insert(usageRollups).values(rollups);

      // Webhooks (30 days): one endpoint; events with deliveries in every state.
      const endpointId = id("whep");
      await db.insert(webhookEndpoints).values({
        id: endpointId,
        tenantId: t.tenantId,
        url: "https://receiver.example/hook",
        secret: "whsec_dGVzdA==",
      });
      const old = at(cut.webhook_events, -10 * DAY);
      const event = async (name: string, createdAt: Date) => {
        const eventId = id(`evt_${name}`);
        await db
          .insert(webhookEvents)
          .values({ id: eventId, tenantId: t.tenantId, type: "key.created", data: {}, createdAt });
        return eventId;
      };
      const delivery = async (
        eventId: string,
        status: "pending" | "succeeded" | "dead",
        createdAt: Date,
        updatedAt: Date,
        attempts: Date[],
      ) => {
        const deliveryId = id("dlv");
        await db.insert(webhookDeliveries).values({
          id: deliveryId,
          tenantId: t.tenantId,
          eventId,
          endpointId,
          status,
          attempts: attempts.length,
          createdAt,
          updatedAt,
        });
        for (const [i, startedAt] of attempts.entries())
          await db.insert(webhookAttempts).values({
            tenantId: t.tenantId,
            deliveryId,
            attempt: i + 1,
            startedAt,
            status: status === "succeeded" && i === attempts.length - 1 ? 200 : 500,
            latencyMs: 10,
          });
        return deliveryId;
      };
      // Four delivered long ago (8 attempts), and one no endpoint subscribed to (no delivery at all).
      for (let i = 0; i < 4; i++)
        await delivery(await event(`done${i}`, old), "succeeded", old, old, [old, at(old, 5_000)]);
      await event("bare", old);
      const pendingEvent = await event("pending", old);
      const pendingDelivery = await delivery(pendingEvent, "pending", old, old, [old, at(old, 5_000)]);
      // Pending and never attempted yet (no attempt rows to hold on to): still kept, with its event.
      const waitingEvent = await event("waiting", old);
      const waitingDelivery = await delivery(waitingEvent, "pending", old, old, []);
      // A dead delivery replayed yesterday: its old attempt goes, the delivery, its new attempt and its event stay.
      const replayedEvent = await event("replayed", old);
      const replayedDelivery = await delivery(replayedEvent, "dead", old, new Date(now - DAY), [
        old,
        new Date(now - DAY),
      ]);
      const boundaryEvent = await event("boundary", cut.webhook_events);
      const boundaryDelivery = await delivery(
        boundaryEvent,
        "succeeded",
        cut.webhook_events,
        cut.webhook_events,
        [cut.webhook_events],
      );
      const youngEvent = await event("young", new Date(now));
      const youngDelivery = await delivery(youngEvent, "dead", new Date(now), new Date(now), [new Date(now)]);

      // Housekeeping (30 days): sessions and portal codes that expired (or were revoked) before the cutoff go.
      const hk = cut.web_sessions;
      const session = (name: string, expiresAt: Date, revokedAt: Date | null = null) => ({
        id: id(`wss_${name}`),
        tokenHash: crypto.randomUUID(),
        kind: "portal" as const,
        tenantId: t.tenantId,
        via: "link" as const,
        createdAt: at(expiresAt, -DAY),
        expiresAt,
        revokedAt,
      });
      const sessions = {
        expired: session("expired", at(hk, -1)),
        revoked: session("revoked", new Date(now + DAY), at(hk, -DAY)),
        boundary: session("boundary", hk),
        active: session("active", new Date(now + DAY)),
      };
      await db.insert(webSessions).values(Object.values(sessions));
      const code = (name: string, expiresAt: Date) => ({
        id: id(`pcd_${name}`),
        codeHash: crypto.randomUUID(),
        purpose: "link" as const,
        tenantId: t.tenantId,
        createdAt: at(expiresAt, -DAY),
        expiresAt,
        usedAt: null,
      });
      const codes = { expired: code("expired", at(hk, -1)), boundary: code("boundary", hk) };
      await db.insert(portalCodes).values(Object.values(codes));

      const runs = await pruneUntilDrained(db, now);

      // Never more than 3 rows per statement, and the backlogs took several runs.
      for (const reports of runs)
        for (const r of reports) for (const n of r.batches) expect(n).toBeLessThanOrEqual(3);
      const usageRuns = batchesOf(runs, "usage_events").filter((b) => (b[0] ?? 0) > 0);
      expect(usageRuns.length).toBeGreaterThanOrEqual(3);
      expect(
        batchesOf(runs, "webhook_deliveries").filter((b) => (b[0] ?? 0) > 0).length,
      ).toBeGreaterThanOrEqual(2);

      const ids = async <T extends { id: string }>(rows: Promise<T[]>) =>
        (await rows).map((r) => r.id).sort();
      expect(
        await ids(
          db.select({ id: usageEvents.id }).from(usageEvents).where(eq(usageEvents.tenantId, t.tenantId)),
        ),
      ).toEqual([...events.kept].sort());
      expect(
        (
          await db
            .select({ g: usageRollups.granularity, route: usageRollups.route })
            .from(usageRollups)
            .where(eq(usageRollups.tenantId, t.tenantId))
        )
          .map((r) => `${r.g} ${r.route}`)
          .sort(),
      ).toEqual(["day /boundary/", "hour /boundary/", "hour /young/"]);

      expect(
        await ids(
          db
            .select({ id: webhookEvents.id })
            .from(webhookEvents)
            .where(eq(webhookEvents.tenantId, t.tenantId)),
        ),
      ).toEqual([pendingEvent, waitingEvent, replayedEvent, boundaryEvent, youngEvent].sort());
      expect(
        await ids(
          db
            .select({ id: webhookDeliveries.id })
            .from(webhookDeliveries)
            .where(eq(webhookDeliveries.tenantId, t.tenantId)),
        ),
      ).toEqual([pendingDelivery, waitingDelivery, replayedDelivery, boundaryDelivery, youngDelivery].sort());
      const attempts = await db
        .select({ deliveryId: webhookAttempts.deliveryId, startedAt: webhookAttempts.startedAt })
        .from(webhookAttempts)
        .where(eq(webhookAttempts.tenantId, t.tenantId));
      const attemptsOf = (deliveryId: string) => attempts.filter((a) => a.deliveryId === deliveryId).length;
      expect(attemptsOf(pendingDelivery)).toBe(2); // a pending delivery keeps its whole log
      expect(attemptsOf(replayedDelivery)).toBe(1);
      expect(attemptsOf(boundaryDelivery)).toBe(1);
      expect(attemptsOf(youngDelivery)).toBe(1);
      expect(attempts).toHaveLength(5);

      expect(
        await ids(
          db.select({ id: webSessions.id }).from(webSessions).where(eq(webSessions.tenantId, t.tenantId)),
        ),
      ).toEqual([sessions.boundary.id, sessions.active.id].sort());
      expect(
        await ids(
          db.select({ id: portalCodes.id }).from(portalCodes).where(eq(portalCodes.tenantId, t.tenantId)),
        ),
      ).toEqual([codes.boundary.id]);

      // A second pass at the same instant deletes nothing of this tenant (idempotent, cheap when idle).
      const again = await pruneExpired(db, DEFAULT_RETENTION, now, SMALL);
      expect(again.every((r) => r.drained && r.deleted === 0)).toBe(true);
    });
  });

  it("prunes an audit chain oldest seq first, never past a younger entry, and what remains verifies from the prune anchor", async () => {
    const now = Date.now();
    const cut = cutoffs(now, DEFAULT_RETENTION);
    // Chains of their own (no tenant's traffic appends to them meanwhile).
    const chain = `ten_retention_${uniq()}`;
    const old = (base: Date, days: number) => new Date(base.getTime() - days * DAY).toISOString();
    const request = (occurredAt: string, n: number): RequestContent => ({
      chain,
      requestId: `req_${chain}_${n}`,
      occurredAt,
      keyId: "key_x",
      method: "GET",
      route: "/v1/",
      status: 200,
      clientIp: "203.0.113.7",
      userAgent: "retention-test",
    });
    // seq 1-4 expired, 5 young, 6 expired but appended late (after 5), 7 young.
    const requestTimes = [
      old(cut.audit_requests, 50),
      old(cut.audit_requests, 40),
      old(cut.audit_requests, 30),
      old(cut.audit_requests, 20),
      new Date(now - 2 * DAY).toISOString(),
      old(cut.audit_requests, 10),
      new Date(now).toISOString(),
    ];
    const action = (occurredAt: string, n: number): ActionContent => ({
      chain,
      occurredAt,
      actorType: "admin",
      actorId: "admin_token",
      action: "key.create",
      targets: [{ type: "key", id: `key_${n}` }],
      changes: { name: { before: null, after: `k${n}` } },
      requestId: `req_a_${chain}_${n}`,
      clientIp: null,
      userAgent: null,
    });
    // seq 1-4 older than 7 years, 5 exactly at the cutoff, 6 now.
    const actionTimes = [
      old(cut.audit_actions, 400),
      old(cut.audit_actions, 300),
      old(cut.audit_actions, 2),
      new Date(cut.audit_actions.getTime() - 1).toISOString(),
      cut.audit_actions.toISOString(),
      new Date(now).toISOString(),
    ];

    await withDb(async (db) => {
      await db.transaction(async (tx) => {
        await appendToChains(tx, "request", requestTimes.map(request));
        await appendToChains(tx, "action", actionTimes.map(action));
      });
      const runs = await pruneUntilDrained(db, now);
      for (const reports of runs)
        for (const r of reports) for (const n of r.batches) expect(n).toBeLessThanOrEqual(3);

      const requests = await db
        .select()
        .from(auditRequests)
        .where(eq(auditRequests.chain, chain))
        .orderBy(auditRequests.seq);
      expect(requests.map((r) => r.seq)).toEqual([5, 6, 7]);
      const actions = await db
        .select()
        .from(auditActions)
        .where(eq(auditActions.chain, chain))
        .orderBy(auditActions.seq);
      expect(actions.map((r) => r.seq)).toEqual([5, 6]);

      const heads = await db.execute<{ log: string; seq: string; pruned_seq: string; pruned_head: string }>(
        sql`SELECT log, seq, pruned_seq, pruned_head FROM audit.chains WHERE chain = ${chain} ORDER BY log`,
      );
      expect(heads.rows.map((h) => [h.log, Number(h.seq), Number(h.pruned_seq)])).toEqual([
        ["action", 6, 4],
        ["request", 7, 4],
      ]);
      const anchor = (log: string) => heads.rows.find((h) => h.log === log)?.pruned_head as string;
      // The anchor is the hash of the last pruned entry: the first kept entry links to it.
      expect(anchor("request")).toBe(requests[0]?.prevHash);

      const asEntries = <T extends { occurredAt: Date }>(rows: T[]) =>
        rows.map((r) => ({ ...r, occurredAt: r.occurredAt.toISOString() }));
      expect(
        await verifyEntries("request", asEntries(requests), { [chain]: anchor("request") }),
      ).toMatchObject({
        ok: true,
        entries: 3,
        firstSeq: 5,
        lastSeq: 7,
      });
      expect(await verifyEntries("action", asEntries(actions), { [chain]: anchor("action") })).toMatchObject({
        ok: true,
        entries: 2,
      });
      // Checked against the chain's start instead, the remainder is (rightly) not a whole chain.
      expect(await verifyEntries("action", asEntries(actions), { [chain]: GENESIS })).toMatchObject({
        ok: false,
      });

      // With a 1-day request retention seq 5 has expired too: 5 and 6 go, 7 (younger) stays, the
      // anchor moves on, and the chain keeps appending after it.
      // Other test files' requests older than a day expire too (the database is shared): big batches.
      const reports = await pruneExpired(db, { ...DEFAULT_RETENTION, requestAuditDays: 1 }, now, {
        batchSize: 5_000,
        maxBatchesPerKind: 1_000,
        budgetMs: 120_000,
      });
      expect(reports.find((r) => r.kind === "audit_requests")?.drained).toBe(true);
      const left = await db
        .select()
        .from(auditRequests)
        .where(eq(auditRequests.chain, chain))
        .orderBy(auditRequests.seq);
      expect(left.map((r) => r.seq)).toEqual([7]);
      await db.transaction((tx) => appendToChains(tx, "request", [request(new Date(now).toISOString(), 8)]));
      const tail = await db
        .select()
        .from(auditRequests)
        .where(and(eq(auditRequests.chain, chain), inArray(auditRequests.seq, [7, 8])))
        .orderBy(auditRequests.seq);
      const moved = await db.execute<{ pruned_seq: string; pruned_head: string }>(
        sql`SELECT pruned_seq, pruned_head FROM audit.chains WHERE chain = ${chain} AND log = 'request'`,
      );
      expect(Number(moved.rows[0]?.pruned_seq)).toBe(6);
      expect(
        await verifyEntries("request", asEntries(tail), { [chain]: moved.rows[0]?.pruned_head as string }),
      ).toMatchObject({ ok: true, entries: 2 });
    });
  });

  it("runs from the scheduled handler at the tick's time with the configured retention", async () => {
    const t = await seedTenant();
    const oldId = `old-${uniq()}`;
    const youngId = `young-${uniq()}`;
    await withDb(async (db) => {
      await db
        .insert(usageEvents)
        .values([
          usageRow(t.tenantId, t.keyId, oldId, new Date(Date.now() - 91 * DAY)),
          usageRow(t.tenantId, t.keyId, youngId, new Date(Date.now() - 89 * DAY)),
        ]);
      await runCron();
      const left = await db
        .select({ id: usageEvents.id })
        .from(usageEvents)
        .where(eq(usageEvents.tenantId, t.tenantId));
      expect(left.map((r) => r.id)).toEqual([youngId]);
    });
  });

  it("reconciliation still balances an hour whose raw usage events were pruned (from the hourly rollups)", async () => {
    const realNow = Date.now();
    // Traffic 100 days ago, through the real pipeline: admitted by the tenant object, stored by the consumer.
    const then = Math.floor((realNow - 100 * DAY) / HOUR) * HOUR + 10 * 60_000;
    clock.set(then);
    const t = await seedTenant();
    // Test keys are never billable: nothing goes to the outbox or Stripe, so admitted = rows is the whole check.
    const key = await createKey(t.tenantId, { env: "test" });
    const marker = uniq();
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 3; i++) await gateway(`/v1/${marker}/${i}`, { headers: bearer(key.key) });
      },
      3,
      t.tenantId,
    );
    await deliver(events);
    clock.set(realNow);

    const hour = Math.floor(then / HOUR) * HOUR;
    const reconcileHour = async () =>
      (
        await expectJson<{
          rows: { hour: string; admittedRequests: number; usageRows: number; difference: boolean }[];
        }>(
          await admin(
            "GET",
            `/admin/v1/reconciliation?from=${new Date(hour).toISOString()}&to=${new Date(hour + HOUR).toISOString()}&tenant=${t.tenantId}`,
          ),
          200,
        )
      ).rows;
    expect(await reconcileHour()).toEqual([
      expect.objectContaining({ admittedRequests: 3, usageRows: 3, difference: false }),
    ]);

    await withDb(async (db) => {
      await pruneExpired(db, DEFAULT_RETENTION, realNow);
      const raw = await db
        .select({ id: usageEvents.id })
        .from(usageEvents)
        .where(eq(usageEvents.tenantId, t.tenantId));
      expect(raw).toEqual([]);
    });
    expect(await reconcileHour()).toEqual([
      expect.objectContaining({
        hour: new Date(hour).toISOString(),
        admittedRequests: 3,
        usageRows: 3,
        difference: false,
      }),
    ]);
  });

  it("credit reconciliation of a prepaid tenant stays clean after its settled hour's raw events are pruned", async () => {
    const realNow = Date.now();
    const then = Math.floor((realNow - 100 * DAY) / HOUR) * HOUR + 10 * 60_000;
    clock.set(then);
    const t = await prepaidTenant();
    await grant(t.tenantId, 50);
    const marker = uniq();
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 3; i++) await gateway(`/v1/${marker}/${i}`, { headers: bearer(t.key) });
      },
      3,
      t.tenantId,
    );
    await settlesAt(t.tenantId, 47);
    await deliver(events);
    // 15 minutes after the hour ended, the cron settles it.
    clock.set(then + HOUR + 10 * 60_000);
    await creditsCron(env);
    clock.set(realNow);
    expect((await reconciliation(t.tenantId)).credits).toEqual([
      expect.objectContaining({ objectBalance: 47, ledgerBalance: 47, settledUnits: 3, difference: false }),
    ]);

    await withDb((db) => pruneExpired(db, DEFAULT_RETENTION, realNow));
    const after = await reconciliation(t.tenantId);
    expect(after.credits).toEqual([
      expect.objectContaining({
        objectBalance: 47,
        ledgerBalance: 47,
        settledUnits: 3,
        settledDrift: 0,
        difference: false,
      }),
    ]);
    expect(after.creditDifferences).toBe(0);
  });
});
