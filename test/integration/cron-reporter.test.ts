import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { openDb } from "../../workers/shared/db";
import { admin, expectJson, seedTenant } from "../support/gateway";
import { runCron } from "../support/metering";

describe("cron reporter", () => {
  it("the scheduled handler sends a pending outbox row of a closed hour to Stripe and marks it sent", async () => {
    const t = await seedTenant(); // with Stripe configured, the tenant gets its Stripe customer
    // Two hours ago: the hour has ended, and so has the lateness margin after it.
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000);
    const rowId = `gwh:${t.tenantId}:${hour.getTime() / 1000}:0`;
    const { db, close } = openDb(env);
    try {
      await db.execute(
        sql`INSERT INTO billing_outbox (id, tenant_id, hour, units) VALUES (${rowId}, ${t.tenantId}, ${hour}, 7)`,
      );
      // A run claims due rows oldest hour first, up to its budget: rows other files left pending may
      // come first, so run the cron a few times (each run is a real `scheduled` invocation).
      const read = () =>
        db.execute<{ state: string; attempts: number; sent_at: Date | null }>(
          sql`SELECT state, attempts, sent_at FROM billing_outbox WHERE id = ${rowId}`,
        );
      let row = await read();
      for (let run = 0; run < 5 && row.rows[0]?.state === "pending"; run++) {
        await runCron();
        row = await read();
      }
      expect(row.rows[0]).toMatchObject({ state: "sent", attempts: 1 });
      expect(row.rows[0]?.sent_at).not.toBeNull();
    } finally {
      await close();
    }
  });

  it("POST /admin/v1/billing/report sends now: closed hours by default, the open hour only with openHours", async () => {
    const t = await seedTenant();
    const open = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
    const rowId = `gwh:${t.tenantId}:${open.getTime() / 1000}:0`;
    const { db, close } = openDb(env);
    try {
      await db.execute(
        sql`INSERT INTO billing_outbox (id, tenant_id, hour, units) VALUES (${rowId}, ${t.tenantId}, ${open}, 3)`,
      );
      const state = async () =>
        (await db.execute<{ state: string }>(sql`SELECT state FROM billing_outbox WHERE id = ${rowId}`))
          .rows[0]?.state;
      const plain = await expectJson<{ enabled: boolean }>(
        await admin("POST", "/admin/v1/billing/report"),
        200,
      );
      expect(plain.enabled).toBe(true);
      expect(await state()).toBe("pending"); // the hour is still open: the cron leaves it
      await expectJson(await admin("POST", "/admin/v1/billing/report?openHours=yes"), 400);
      const report = await expectJson<{ sent: number }>(
        await admin("POST", "/admin/v1/billing/report?openHours=true"),
        200,
      );
      expect(report.sent).toBeGreaterThanOrEqual(1);
      expect(await state()).toBe("sent");
    } finally {
      await close();
    }
  });
});
