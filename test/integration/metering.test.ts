/**
 * The metering pipeline under failures: duplicate delivery, a failure mid-batch, Postgres down
 * then back, Stripe answering 500 and 429 then recovering, poison messages. After each, the
 * reconciliation shows admitted = usage rows and billable units = outbox = Stripe.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it, vi } from "vitest";
import { SPOOL_SHARDS } from "../../workers/metering/producer";
import type { ReconciliationRow, Unbilled } from "../../workers/metering/reconciliation";
import { REPORT_MESSAGE } from "../../workers/metering/report-message";
import { reportAndChain, reportUsage } from "../../workers/metering/stripe-reporter";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import { ensureMeter, meterEventName, stripeClient } from "../../workers/shared/stripe";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import {
  captureUsage,
  deliver,
  eventsIn,
  reconciliation,
  stripeFailNext,
  watchUsage,
} from "../support/metering";

const HOUR_MS = 3_600_000;
const LATENESS_MS = 600_000; // STRIPE_REPORT_LATENESS_S in wrangler.toml

/** The start (ms) of each hour the billable events fall in. */
const billableHours = (events: UsageEvent[]) => [
  ...new Set(events.filter((e) => e.billable).map((e) => Math.floor(Date.parse(e.ts) / HOUR_MS) * HOUR_MS)),
];

/** Traffic for a fresh tenant: billable calls, an origin 404 (billable), a 500 (not), test-key calls (not). */
async function traffic() {
  const t = await seedTenant({ plan: { entitlements: ["api", "reports"] } });
  const testKey = await createKey(t.tenantId, { env: "test" });
  const events = await captureUsage(async () => {
    for (let i = 0; i < 6; i++)
      await (await gateway(`/v1/m/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
    await (await gateway(`/v1/reports/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
    await (await gateway(`/v1/m/${uniq()}?status=404`, { headers: bearer(t.key) })).arrayBuffer();
    await (await gateway(`/v1/m/${uniq()}?status=500`, { headers: bearer(t.key) })).arrayBuffer();
    for (let i = 0; i < 2; i++)
      await (await gateway(`/v1/m/${uniq()}`, { headers: bearer(testKey.key) })).arrayBuffer();
  }, 11);
  expect(events).toHaveLength(11);
  return { tenant: t, events, billableUnits: 6 + 5 + 1 };
}

async function count(tenantId: string) {
  const { db, close } = openDb(env);
  try {
    const rows = await db.execute<{
      events: string;
      units: string;
      rollup_requests: string;
      rollup_units: string;
      outbox: string;
    }>(sql`
      SELECT (SELECT count(*) FROM usage_events WHERE tenant_id = ${tenantId}) AS events,
        (SELECT coalesce(sum(units) FILTER (WHERE billable), 0) FROM usage_events WHERE tenant_id = ${tenantId}) AS units,
        (SELECT coalesce(sum(requests), 0) FROM usage_rollups WHERE tenant_id = ${tenantId} AND granularity = 'hour') AS rollup_requests,
        (SELECT coalesce(sum(billable_units), 0) FROM usage_rollups WHERE tenant_id = ${tenantId} AND granularity = 'day') AS rollup_units,
        (SELECT coalesce(sum(units), 0) FROM billing_outbox WHERE tenant_id = ${tenantId}) AS outbox`);
    const r = rows.rows[0] as Record<string, string>;
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]));
  } finally {
    await close();
  }
}

/** This tenant's billing outbox rows, oldest first, with `next_attempt_at` in ms. */
async function outbox(tenantId: string) {
  const { db, close } = openDb(env);
  try {
    const rows = await db.execute<{
      id: string;
      state: string;
      attempts: number;
      next_attempt_at: string | Date;
      last_error: string | null;
    }>(sql`SELECT id, state, attempts, next_attempt_at, last_error FROM billing_outbox
      WHERE tenant_id = ${tenantId} ORDER BY created_at, id`);
    return rows.rows.map((r) => ({ ...r, next_attempt_at: new Date(r.next_attempt_at).getTime() }));
  } finally {
    await close();
  }
}

/**
 * Sends what earlier tests (in any order) left due, so a test that counts one report's outcomes
 * sees only its own rows.
 */
async function drainOutbox() {
  await reportAll();
}

/** The meter events the Stripe stand-in accepted for a tenant's customer under `eventName`. */
async function stripeEvents(tenantId: string, eventName: string) {
  const { db, close } = openDb(env);
  let customer: string | null;
  try {
    const rows = await db.execute<{ stripe_customer_id: string | null }>(
      sql`SELECT stripe_customer_id FROM tenants WHERE id = ${tenantId}`,
    );
    customer = rows.rows[0]?.stripe_customer_id ?? null;
  } finally {
    await close();
  }
  if (!customer) throw new Error(`tenant ${tenantId} has no Stripe customer`);
  const res = await fetch(
    `${env.STRIPE_API_URL}/__control/events?customer=${encodeURIComponent(customer)}&event_name=${encodeURIComponent(eventName)}`,
  );
  return ((await res.json()) as { data: Array<{ identifier: string; value: number }> }).data;
}

/**
 * Reports until the outbox is empty, jumping the clock past any backoff. An hour is due once it
 * has ended plus the lateness margin (10 min): the current hour is due from 2 h on.
 */
async function reportAll() {
  for (let i = 0; i < 6; i++) await reportUsage(env, Date.now() + i * 3_600_000);
}

/** A clock at which the hours up to now are due (ended, plus the lateness margin). */
const afterThisHour = () => Date.now() + 2 * HOUR_MS;

async function expectReconciled(tenantId: string, billableUnits: number, admitted: number) {
  const table = await reconciliation(tenantId);
  expect(table.rows.filter((r) => r.difference)).toEqual([]);
  const sum = (k: keyof (typeof table.rows)[number]) => table.rows.reduce((a, r) => a + Number(r[k] ?? 0), 0);
  expect({
    admitted: sum("admittedRequests"),
    rows: sum("usageRows"),
    billable: sum("billableUnits"),
    outbox: sum("outboxUnits"),
    stripe: sum("stripeUnits"),
  }).toEqual({
    admitted,
    rows: admitted,
    billable: billableUnits,
    outbox: billableUnits,
    stripe: billableUnits,
  });
}

describe("metering pipeline", () => {
  it("counts a batch delivered twice exactly once, then reconciles to the unit", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    const first = await deliver(events);
    expect(first.explicitAcks).toHaveLength(11);
    const second = await deliver(events);
    expect(second.explicitAcks).toHaveLength(11);
    expect(await count(tenant.tenantId)).toEqual({
      events: 11,
      units: billableUnits,
      rollup_requests: 11,
      rollup_units: billableUnits,
      outbox: billableUnits,
    });
    await reportAll();
    await expectReconciled(tenant.tenantId, billableUnits, 11);
  });

  it("rolls back a batch that fails midway and counts it once when redelivered", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    const { db, close } = openDb(env);
    const fn = `fail_rollup_${uniq().replace(/-/g, "")}`;
    try {
      // The events insert succeeds; the rollup upsert after it fails: nothing may remain.
      await db.execute(
        sql.raw(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.tenant_id = '${tenant.tenantId}' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`),
      );
      await db.execute(
        sql.raw(`CREATE TRIGGER ${fn} BEFORE INSERT ON usage_rollups FOR EACH ROW EXECUTE FUNCTION ${fn}()`),
      );
      const failed = await deliver(events);
      expect(failed.explicitAcks).toHaveLength(0);
      expect(failed.retryMessages).toHaveLength(11);
      expect(await count(tenant.tenantId)).toMatchObject({ events: 0, outbox: 0 });
    } finally {
      await db.execute(sql.raw(`DROP TRIGGER IF EXISTS ${fn} ON usage_rollups`));
      await db.execute(sql.raw(`DROP FUNCTION IF EXISTS ${fn}()`));
      await close();
    }
    const retried = await deliver(events);
    expect(retried.explicitAcks).toHaveLength(11);
    expect(await count(tenant.tenantId)).toMatchObject({
      events: 11,
      rollup_requests: 11,
      outbox: billableUnits,
    });
    await reportAll();
    await expectReconciled(tenant.tenantId, billableUnits, 11);
  });

  it("retries every message with backoff while Postgres is unreachable, and loses nothing", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    const down = { ...env, PG_WS_PROXY: "127.0.0.1:1/v1" };
    const failed = await deliver(events, down);
    expect(failed.explicitAcks).toHaveLength(0);
    // (The pool's queue harness records which messages were retried, not their delay: backoffSeconds is unit-tested.)
    expect(failed.retryMessages).toHaveLength(11);
    const again = await deliver(events, down);
    expect(again.retryMessages).toHaveLength(11);
    const back = await deliver(events);
    expect(back.explicitAcks).toHaveLength(11);
    await reportAll();
    await expectReconciled(tenant.tenantId, billableUnits, 11);
  });

  it("keeps reporting through Stripe 500s and 429s with stable identifiers, never double counting", {
    timeout: 60_000,
  }, async () => {
    // Three tenants, each with its traffic in three consumer batches: three outbox rows (one per
    // tenant-hour), each reported as one meter event.
    const runs = [await traffic(), await traffic(), await traffic()];
    await drainOutbox();
    // The meter lookup is cached once it succeeds: warm it, so the faults below hit meter events.
    await ensureMeter(stripeClient(env) as Stripe, meterEventName(env));
    for (const { events } of runs)
      for (const batch of [events.slice(0, 3), events.slice(3, 6), events.slice(6)]) await deliver(batch);
    for (const { tenant, events } of runs)
      expect(await outbox(tenant.tenantId)).toHaveLength(billableHours(events).length);
    // More rows than calls in flight (5): a failure must not stop a lane from taking the next row.
    const busy = await seedTenant();
    const { db: seedDb, close: closeSeed } = openDb(env);
    try {
      await seedDb.execute(sql`
        INSERT INTO billing_outbox (id, tenant_id, hour, units)
        SELECT 'gwh:' || ${busy.tenantId} || ':' || extract(epoch FROM h)::bigint || ':0', ${busy.tenantId}, h, 2
        FROM generate_series(date_trunc('hour', now()) - interval '6 hours',
          date_trunc('hour', now()) - interval '2 hours', interval '1 hour') AS h`);
    } finally {
      await closeSeed();
    }
    const tenantIds = [...runs.map((r) => r.tenant.tenantId), busy.tenantId];
    const rowsOf = async () => (await Promise.all(tenantIds.map((id) => outbox(id)))).flat();
    const now = afterThisHour();

    await stripeFailNext(1, 500);
    // One row's failure does not stop the others.
    const first = await reportUsage(env, now);
    expect(first).toMatchObject({ sent: (await rowsOf()).length - 1, retrying: 1, failed: 0, more: false });
    const [failing] = (await rowsOf()).filter((r) => r.state === "pending");
    expect(failing).toMatchObject({
      attempts: 1,
      next_attempt_at: now + 2_000, // backoff: 2 s after the first attempt
      last_error: "StripeAPIError: An unknown error occurred (injected by the stand-in).",
    });

    await stripeFailNext(1, 429);
    expect(await reportUsage(env, now + 1_999)).toEqual({
      enabled: true,
      sent: 0,
      retrying: 0,
      failed: 0,
      more: false,
    });
    expect(await reportUsage(env, now + 2_000)).toEqual({
      enabled: true,
      sent: 0,
      retrying: 1,
      failed: 0,
      more: false,
    });
    expect((await rowsOf()).find((r) => r.id === failing?.id)).toMatchObject({
      state: "pending",
      attempts: 2,
      next_attempt_at: now + 2_000 + 4_000, // then 4 s
      last_error: expect.stringMatching(/^StripeRateLimitError: Request rate limit exceeded/),
    });
    expect(await reportUsage(env, now + 6_000)).toEqual({
      enabled: true,
      sent: 1,
      retrying: 0,
      failed: 0,
      more: false,
    });

    // A report repeated after success (a lost acknowledgement) is deduplicated by identifier.
    const { db, close } = openDb(env);
    try {
      for (const tenantId of tenantIds)
        await db.execute(
          sql`UPDATE billing_outbox SET state = 'pending', next_attempt_at = now() WHERE tenant_id = ${tenantId}`,
        );
    } finally {
      await close();
    }
    await reportAll();
    for (const { tenant, billableUnits } of runs) {
      await expectReconciled(tenant.tenantId, billableUnits, 11);
      const rows = await outbox(tenant.tenantId);
      expect(rows.map((r) => r.state)).toEqual(rows.map(() => "sent"));
      // Stripe holds one event per row (the repeats were deduplicated by identifier).
      const accepted = await stripeEvents(tenant.tenantId, meterEventName(env));
      expect(accepted.map((e) => e.identifier).sort()).toEqual(rows.map((r) => r.id).sort());
    }
    const busyRows = await outbox(busy.tenantId);
    expect(busyRows.map((r) => r.state)).toEqual(busyRows.map(() => "sent"));
    expect((await stripeEvents(busy.tenantId, meterEventName(env))).map((e) => e.value)).toEqual([
      2, 2, 2, 2, 2,
    ]);
  });

  it("keeps the rows due, with backoff, when the first Stripe call of a report (the meter lookup) fails", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    await drainOutbox();
    await deliver(events);
    // A meter name no isolate has looked up yet: the report's first Stripe call is the meter lookup.
    const fresh = { ...env, STRIPE_METER_EVENT_NAME: `units_${uniq().replace(/-/g, "")}` };
    expect(billableHours(events)).toHaveLength(1); // (a run that straddles an hour makes two rows)
    const now = afterThisHour();
    await stripeFailNext(1, 500);
    expect(await reportUsage(fresh, now)).toEqual({
      enabled: true,
      sent: 0,
      retrying: 1,
      failed: 0,
      more: false,
    });
    const [row] = await outbox(tenant.tenantId);
    expect(row).toMatchObject({
      state: "pending",
      attempts: 1,
      next_attempt_at: now + 2_000,
      last_error: "StripeAPIError: An unknown error occurred (injected by the stand-in).",
    });
    expect(await reportUsage(fresh, now + 1_999)).toEqual({
      enabled: true,
      sent: 0,
      retrying: 0,
      failed: 0,
      more: false,
    });
    expect(await reportUsage(fresh, now + 2_000)).toEqual({
      enabled: true,
      sent: 1,
      retrying: 0,
      failed: 0,
      more: false,
    });
    expect(await outbox(tenant.tenantId)).toMatchObject([{ id: row?.id, state: "sent", last_error: null }]);
    const accepted = await stripeEvents(tenant.tenantId, fresh.STRIPE_METER_EVENT_NAME);
    expect(accepted.map((e) => [e.identifier, e.value])).toEqual([[row?.id, billableUnits]]);
  });

  it("sends one meter event per tenant-hour, however many batches and requests it holds, once the hour has closed", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    const hours = billableHours(events);
    expect(hours).toHaveLength(1); // (a run that straddles an hour makes two rows)
    const hour = hours[0] as number;
    await drainOutbox();
    for (const batch of [events.slice(0, 3), events.slice(3, 6), events.slice(6), events])
      await deliver(batch);
    const [row] = await outbox(tenant.tenantId);
    expect(await outbox(tenant.tenantId)).toHaveLength(1);
    expect(row?.id).toBe(`gwh:${tenant.tenantId}:${hour / 1000}:0`);

    // Due once the hour has ended plus the lateness margin; not a millisecond before.
    await reportUsage(env, hour + HOUR_MS + LATENESS_MS - 1);
    expect(await outbox(tenant.tenantId)).toMatchObject([{ state: "pending", attempts: 0 }]);
    await reportUsage(env, hour + HOUR_MS + LATENESS_MS);
    expect(await outbox(tenant.tenantId)).toMatchObject([{ state: "sent", attempts: 1 }]);
    const accepted = await stripeEvents(tenant.tenantId, meterEventName(env));
    expect(accepted.map((e) => [e.identifier, e.value])).toEqual([[row?.id, billableUnits]]);
    await expectReconciled(tenant.tenantId, billableUnits, 11);
  });

  it("reports units that arrive after their hour was sent as a delta with the next seq, never doubled", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    expect(billableHours(events)).toHaveLength(1); // (a run that straddles an hour makes two rows)
    const [early, late] = [events.slice(0, 6), events.slice(6)];
    await deliver(early);
    await reportAll();
    // The rest of the hour comes late (a queue backlog, a spool re-send), with the early ones again.
    await deliver([...late, ...early]);
    const rows = await outbox(tenant.tenantId);
    expect(rows.map((r) => [r.id.split(":").pop(), r.state])).toEqual([
      ["0", "sent"],
      ["1", "pending"],
    ]);
    await reportAll();
    const accepted = await stripeEvents(tenant.tenantId, meterEventName(env));
    expect(accepted.map((e) => [e.identifier, e.value])).toEqual([
      [rows[0]?.id, 6],
      [rows[1]?.id, billableUnits - 6],
    ]);
    await expectReconciled(tenant.tenantId, billableUnits, 11);
  });

  it("chains a report that spends its budget through the queue until nothing is due", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant();
    await drainOutbox();
    const { db, close } = openDb(env);
    try {
      // Three closed hours, 2–4 hours ago.
      await db.execute(sql`
        INSERT INTO billing_outbox (id, tenant_id, hour, units)
        SELECT 'gwh:' || ${t.tenantId} || ':' || extract(epoch FROM h)::bigint || ':0', ${t.tenantId}, h, 3
        FROM generate_series(date_trunc('hour', now()) - interval '4 hours',
          date_trunc('hour', now()) - interval '2 hours', interval '1 hour') AS h`);
    } finally {
      await close();
    }
    const send = vi.spyOn(env.USAGE_QUEUE, "send").mockResolvedValue({} as QueueSendResponse);
    try {
      expect(await reportAndChain(env, Date.now(), 2)).toEqual({
        enabled: true,
        sent: 2,
        retrying: 0,
        failed: 0,
        more: true,
      });
      expect(send.mock.calls).toEqual([[REPORT_MESSAGE, { contentType: "json" }]]);
    } finally {
      send.mockRestore();
    }
    expect((await outbox(t.tenantId)).map((r) => r.state).sort()).toEqual(["pending", "sent", "sent"]);
    // The consumer takes the report message as the next leg.
    const leg = await deliver([REPORT_MESSAGE]);
    expect(leg.explicitAcks).toHaveLength(1);
    expect((await outbox(t.tenantId)).map((r) => r.state)).toEqual(["sent", "sent", "sent"]);
  });

  it("marks units Stripe refuses as too old failed, not retried, and shows them in the reconciliation", {
    timeout: 60_000,
  }, async () => {
    const { tenant, events, billableUnits } = await traffic();
    await drainOutbox();
    await deliver(events);
    // Our clock says 35 days less 90 minutes; Stripe's says more than 35 days: Stripe refuses it.
    const hour = Math.floor((Date.now() - 35 * 86_400_000 - 30 * 60_000) / HOUR_MS) * HOUR_MS;
    const { db, close } = openDb(env);
    try {
      await db.execute(
        sql`UPDATE billing_outbox SET hour = ${new Date(hour)}, next_attempt_at = ${new Date(hour)}
          WHERE tenant_id = ${tenant.tenantId}`,
      );
    } finally {
      await close();
    }
    const summary = await reportUsage(env, hour + 35 * 86_400_000 - 90 * 60_000);
    expect(summary).toMatchObject({ retrying: 0 });
    expect(summary.failed).toBeGreaterThanOrEqual(1);
    const rows = await outbox(tenant.tenantId);
    for (const row of rows)
      expect(row).toMatchObject({
        state: "failed",
        attempts: 1,
        last_error: expect.stringMatching(/^StripeInvalidRequestError: Timestamp \d+ is too far in the past/),
      });
    await reportAll();
    expect((await outbox(tenant.tenantId)).map((r) => r.attempts)).toEqual(rows.map(() => 1));
    const table = await expectJson<{ differences: number; rows: ReconciliationRow[]; unbilled: Unbilled }>(
      await admin(
        "GET",
        `/admin/v1/reconciliation?from=${new Date(hour).toISOString()}&to=${new Date(hour + HOUR_MS).toISOString()}&tenant=${tenant.tenantId}`,
      ),
      200,
    );
    expect(table.differences).toBe(1);
    // Named in every reconciliation, whatever its range: the hour is older than any recent one.
    const { unbilled } = await reconciliation(tenant.tenantId);
    expect(unbilled).toEqual({
      units: billableUnits,
      tenantHours: 1,
      firstHour: new Date(hour).toISOString(),
      lastHour: new Date(hour).toISOString(),
    });
    expect(table.rows).toMatchObject([
      {
        outboxUnits: billableUnits,
        outboxPendingUnits: 0,
        outboxFailedUnits: billableUnits,
        outboxFailure: expect.stringContaining("too far in the past"),
        stripeUnits: 0,
        difference: true,
      },
    ]);
  });

  it("reports nothing, and says so, without a Stripe key", async () => {
    const { events, tenant } = await traffic();
    await deliver(events);
    const { STRIPE_SECRET_KEY: _unused, ...noStripe } = env;
    const logged: string[] = [];
    const log = vi.spyOn(console, "warn").mockImplementation((line: string) => logged.push(line));
    try {
      expect(await reportUsage(noStripe as typeof env)).toEqual({
        enabled: false,
        sent: 0,
        retrying: 0,
        failed: 0,
        more: false,
      });
    } finally {
      log.mockRestore();
    }
    expect(logged.join("\n")).toContain("Stripe usage reporting is off");
    expect((await count(tenant.tenantId)).outbox).toBe(12);
  });

  it("marks units older than Stripe's 35-day meter event window failed instead of sending them", async () => {
    const { tenant, events } = await traffic();
    await deliver(events);
    const { db, close } = openDb(env);
    try {
      await db.execute(
        sql`UPDATE billing_outbox SET hour = now() - interval '40 days' WHERE tenant_id = ${tenant.tenantId}`,
      );
      await reportAll();
      const rows = await db.execute<{ state: string; last_error: string }>(
        sql`SELECT state, last_error FROM billing_outbox WHERE tenant_id = ${tenant.tenantId}`,
      );
      expect(rows.rows.length).toBeGreaterThan(0);
      for (const row of rows.rows) {
        expect(row).toEqual({ state: "failed", last_error: "older than Stripe's 35-day meter event window" });
      }
    } finally {
      await close();
    }
  });

  it("sends poison messages to the dead-letter queue with their reason, and stores the rest", async () => {
    const { tenant, events } = await traffic();
    const dlq = vi.spyOn(env.USAGE_DLQ, "send");
    try {
      const ghost: UsageEvent = {
        ...(events[0] as UsageEvent),
        id: "req_00000000000000000000000000",
        tenantId: "ten_ghost",
      };
      const result = await deliver([...events, { not: "an event" }, "garbage", ghost]);
      expect(result.explicitAcks).toHaveLength(14);
      expect(result.retryMessages).toHaveLength(0);
      const reasons = dlq.mock.calls.map(([body]) => (body as { reason: string }).reason);
      expect(reasons).toHaveLength(3);
      expect(reasons.filter((r) => r.startsWith("invalid usage event"))).toHaveLength(2);
      expect(reasons).toContain("unknown tenant ten_ghost");
    } finally {
      dlq.mockRestore();
    }
    expect((await count(tenant.tenantId)).events).toBe(11);
  });
});

describe("end to end through the real queue", () => {
  it("reconciles requests sent through the gateway with what Postgres and Stripe hold", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant();
    for (let i = 0; i < 5; i++)
      await (await gateway(`/v1/e2e/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
    await vi.waitFor(async () => expect((await count(t.tenantId)).events).toBe(5), {
      timeout: 20_000,
      interval: 250,
    });
    await reportAll();
    await expectReconciled(t.tenantId, 5, 5);
  });
});

/** What the spool shards hold, all together. */
async function spooled() {
  let events = 0;
  for (let shard = 0; shard < SPOOL_SHARDS; shard++)
    events += (await env.USAGE_SPOOL.getByName(`usage-spool-${shard}`).pending()).events;
  return events;
}

describe("producer: many events per message, nothing dropped", () => {
  it("packs concurrent requests' events into few queue messages, and stores every one", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant();
    const usage = watchUsage();
    const n = 40;
    try {
      const ids = await Promise.all(
        Array.from({ length: n }, async () => {
          const res = await gateway(`/v1/many/${uniq()}`, { headers: bearer(t.key) });
          await res.arrayBuffer();
          return res.headers.get("x-request-id");
        }),
      );
      for (const id of ids) await usage.sent(id);
      // One flush every 250 ms at most: 40 requests in flight together fit in a handful of messages.
      expect(usage.messages()).toBeLessThanOrEqual(Math.ceil(n / 10));
      const sent = usage.events().filter((e) => e.tenantId === t.tenantId);
      expect(sent.map((e) => e.id).sort()).toEqual([...ids].sort());
      for (const [body] of usage.send.mock.calls) expect(body).toMatchObject({ v: 2 });
    } finally {
      usage.restore();
    }
    await vi.waitFor(async () => expect((await count(t.tenantId)).events).toBe(n), {
      timeout: 20_000,
      interval: 250,
    });
    await reportAll();
    await expectReconciled(t.tenantId, n, n);
  });

  it("retries, then spools a batch the queue refuses; the spool re-sends it once the queue is back", {
    timeout: 60_000,
  }, async () => {
    const t = await seedTenant();
    const before = await spooled();
    const send = vi
      .spyOn(env.USAGE_QUEUE, "send")
      .mockRejectedValue(new Error("Queue send failed: injected"));
    let refused: UsageEvent[] = [];
    try {
      for (let i = 0; i < 5; i++)
        await (await gateway(`/v1/spool/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
      await vi.waitFor(async () => expect(await spooled()).toBe(before + 5), {
        timeout: 15_000,
        interval: 100,
      });
      refused = send.mock.calls.flatMap(([body]) => eventsIn(body));
      // Every batch was tried 1 + 3 times before it was spooled.
      expect(new Set(refused.map((e) => e.id)).size).toBe(5);
      expect(refused.length).toBe(5 * 4);
    } finally {
      send.mockRestore();
    }
    expect((await count(t.tenantId)).events).toBe(0);

    for (let shard = 0; shard < SPOOL_SHARDS; shard++)
      await runDurableObjectAlarm(env.USAGE_SPOOL.getByName(`usage-spool-${shard}`));
    expect(await spooled()).toBe(0);
    await vi.waitFor(async () => expect((await count(t.tenantId)).events).toBe(5), {
      timeout: 20_000,
      interval: 250,
    });
    // The same events again (a re-send whose acknowledgement was lost): nothing doubles.
    const again = await deliver([{ v: 2, events: [...new Map(refused.map((e) => [e.id, e])).values()] }]);
    expect(again.explicitAcks).toHaveLength(1);
    expect(await count(t.tenantId)).toMatchObject({ events: 5, rollup_requests: 5, outbox: 5 });
    await reportAll();
    await expectReconciled(t.tenantId, 5, 5);
  });

  it("keeps a spooled batch while the queue still refuses, backing off, and deletes it only once sent", {
    timeout: 30_000,
  }, async () => {
    const t = await seedTenant();
    const events = await captureUsage(async () => {
      await (await gateway(`/v1/spool-backoff/${uniq()}`, { headers: bearer(t.key) })).arrayBuffer();
    });
    const spool = env.USAGE_SPOOL.getByName(`usage-spool-test-${uniq()}`);
    await spool.spool(events);
    const send = vi.spyOn(env.USAGE_QUEUE, "send").mockRejectedValue(new Error("still down"));
    try {
      const before = Date.now();
      expect(await runDurableObjectAlarm(spool)).toBe(true);
      expect(await spool.pending()).toEqual({ batches: 1, events: 1 });
      // One failure so far: the next try is 2 s out.
      const next = await runInDurableObject(spool, (_spool, state) => state.storage.getAlarm());
      expect(next).toBeGreaterThanOrEqual(before + 2_000);
      expect(next).toBeLessThan(Date.now() + 2_000 + 1_000);
    } finally {
      send.mockRestore();
    }
    expect(await runDurableObjectAlarm(spool)).toBe(true);
    expect(await spool.pending()).toEqual({ batches: 0, events: 0 });
    await vi.waitFor(async () => expect((await count(t.tenantId)).events).toBe(1), {
      timeout: 20_000,
      interval: 250,
    });
  });

  it("names every event id at error level when neither the queue nor the spool takes a batch", {
    timeout: 30_000,
  }, async () => {
    const t = await seedTenant();
    const send = vi.spyOn(env.USAGE_QUEUE, "send").mockRejectedValue(new Error("queue down"));
    const shard = vi
      .spyOn(env.USAGE_SPOOL, "getByName")
      .mockImplementation(
        () =>
          ({ spool: () => Promise.reject(new Error("spool down")) }) as unknown as ReturnType<
            typeof env.USAGE_SPOOL.getByName
          >,
      );
    const errors: string[] = [];
    const consoleError = vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
    try {
      const res = await gateway(`/v1/lost/${uniq()}`, { headers: bearer(t.key) });
      await res.arrayBuffer();
      const id = res.headers.get("x-request-id");
      await vi.waitFor(() => expect(errors.join("\n")).toContain(id), { timeout: 10_000 });
      const line = JSON.parse(errors.find((l) => l.includes("neither queued nor spooled")) ?? "{}");
      expect(line).toMatchObject({
        level: "error",
        msg: "usage events neither queued nor spooled",
        events: 1,
        event_ids: [id],
        error: "Error: spool down",
      });
    } finally {
      consoleError.mockRestore();
      shard.mockRestore();
      send.mockRestore();
    }
  });
});

describe("consumer: envelopes", () => {
  it("stores the valid events of a partly invalid message and dead-letters the rest with the reason", async () => {
    const { tenant, events } = await traffic();
    const dlq = vi.spyOn(env.USAGE_DLQ, "send");
    try {
      const [first, second, ...rest] = events as [UsageEvent, UsageEvent, ...UsageEvent[]];
      const ghost = { ...first, id: "req_0000000000000000000000ghst", tenantId: "ten_ghost" };
      const result = await deliver([
        { v: 2, events: [first, { ...second, status: 99 }, ghost] },
        { v: 2, events: rest },
        { v: 2, events: [] },
      ]);
      expect(result.explicitAcks).toHaveLength(3);
      expect(result.retryMessages).toHaveLength(0);
      const bodies = dlq.mock.calls.map(([body]) => body);
      expect(bodies).toEqual([
        {
          reason:
            "invalid usage event [1]: status: Too small: expected number to be >=100 | unknown tenant ten_ghost",
          messageId: expect.any(String),
          rejected: [
            {
              reason: "invalid usage event [1]: status: Too small: expected number to be >=100",
              event: { ...second, status: 99 },
            },
            { reason: "unknown tenant ten_ghost", event: ghost },
          ],
          body: { v: 2, events: [first, { ...second, status: 99 }, ghost] },
        },
        {
          reason: "invalid usage envelope: events: Too small: expected array to have >=1 items",
          messageId: expect.any(String),
          rejected: [
            {
              reason: "invalid usage envelope: events: Too small: expected array to have >=1 items",
              event: { v: 2, events: [] },
            },
          ],
          body: { v: 2, events: [] },
        },
      ]);
    } finally {
      dlq.mockRestore();
    }
    // All but the one invalid event (the ghost's tenant does not exist).
    expect((await count(tenant.tenantId)).events).toBe(10);
  });
});
