import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { REPORT_MESSAGE } from "../../workers/metering/report-message";
import { MAX_ROWS_PER_RUN, reportUsage } from "../../workers/metering/stripe-reporter";
import { openDb } from "../../workers/shared/db";
import { meterEventName } from "../../workers/shared/stripe";
import { seedTenant } from "../support/gateway";
import { deliver, runCron } from "../support/metering";

const TENANTS = 20;
const HOURS = 500;

describe("billing report at scale", () => {
  it("drains 10,000 due tenant-hours with one meter event each, chaining past one run's budget", {
    timeout: 600_000,
  }, async () => {
    const tenants: string[] = [];
    for (let i = 0; i < TENANTS; i++) tenants.push((await seedTenant()).tenantId);
    // What earlier files left due goes first, so the legs below count only these rows.
    for (let i = 0; i < 6; i++) await reportUsage(env, Date.now() + i * 3_600_000);
    const { db, close } = openDb(env);
    try {
      // Hours 2 … 501 hours ago (all closed, all within Stripe's 35 days); units 1 … 7.
      await db.execute(sql`
        INSERT INTO billing_outbox (id, tenant_id, hour, units)
        SELECT 'gwh:' || t || ':' || extract(epoch FROM h)::bigint || ':0', t, h, 1 + extract(hour FROM h)::int % 7
        FROM unnest(${sql.param(tenants)}::text[]) AS t,
          generate_series(date_trunc('hour', now()) - ${`${HOURS + 1} hours`}::interval,
            date_trunc('hour', now()) - interval '2 hours', interval '1 hour') AS h`);
      const expected = await db.execute<{ rows: string; units: string }>(
        sql`SELECT count(*) AS rows, sum(units) AS units FROM billing_outbox WHERE tenant_id = ANY(${sql.param(tenants)}::text[])`,
      );
      expect(Number(expected.rows[0]?.rows)).toBe(TENANTS * HOURS);

      const chained = vi.spyOn(env.USAGE_QUEUE, "send").mockResolvedValue({} as QueueSendResponse);
      const started = Date.now();
      let legs = 1;
      try {
        await runCron();
        // Each report message the last leg left is the next leg, run by the real queue consumer.
        while (chained.mock.calls.length >= legs) {
          expect(chained.mock.calls[legs - 1]?.[0]).toEqual(REPORT_MESSAGE);
          expect((await deliver([REPORT_MESSAGE])).explicitAcks).toHaveLength(1);
          legs++;
        }
      } finally {
        chained.mockRestore();
      }
      const elapsedMs = Date.now() - started;

      const after = await db.execute<{ state: string; rows: string; units: string }>(sql`
        SELECT state, count(*) AS rows, sum(units) AS units FROM billing_outbox
        WHERE tenant_id = ANY(${sql.param(tenants)}::text[]) GROUP BY state`);
      expect(after.rows.map((r) => [r.state, Number(r.rows), Number(r.units)])).toEqual([
        ["sent", TENANTS * HOURS, Number(expected.rows[0]?.units)],
      ]);
      expect(legs).toBe(Math.ceil((TENANTS * HOURS) / MAX_ROWS_PER_RUN));

      // Stripe holds exactly one event per tenant-hour: calls = tenant-hours.
      const customers = await db.execute<{ stripe_customer_id: string }>(
        sql`SELECT stripe_customer_id FROM tenants WHERE id = ANY(${sql.param(tenants)}::text[])`,
      );
      let events = 0;
      for (const { stripe_customer_id } of customers.rows) {
        const res = await fetch(
          `${env.STRIPE_API_URL}/__control/events?customer=${stripe_customer_id}&event_name=${meterEventName(env)}`,
        );
        const data = ((await res.json()) as { data: Array<{ identifier: string }> }).data;
        expect(new Set(data.map((e) => e.identifier)).size).toBe(HOURS);
        events += data.length;
      }
      expect(events).toBe(TENANTS * HOURS);
      console.log(
        JSON.stringify({
          measured: "billing report drain",
          tenantHours: TENANTS * HOURS,
          stripeMeterEvents: events,
          legs,
          elapsedMs,
          perSecond: Math.round((TENANTS * HOURS) / (elapsedMs / 1000)),
        }),
      );
    } finally {
      await close();
    }
  });
});
