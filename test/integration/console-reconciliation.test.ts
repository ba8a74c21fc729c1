/**
 * The console's reconciliation page: per UTC day the reconciliation's columns, a day where any
 * column differs marked DIFF (class and word), and its hours per tenant one click away.
 */
import { describe, expect, it } from "vitest";
import { usageEvents } from "../../schema";
import { newId } from "../../workers/shared/ids";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { seedTenant } from "../support/gateway";
import { consoleSession } from "../support/web";

const clock = controlledClock();

/** A day's (or hour's) row: whether it is marked, and its cells as text. */
function rowOf(html: string, attr: string): { diff: boolean; cells: string[] } | null {
  const match = new RegExp(`<tr (class="diff" )?${attr}[^>]*>([\\s\\S]*?)</tr>`).exec(html);
  if (!match) return null;
  const cells = [...(match[2] ?? "").matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) =>
    (m[1] ?? "")
      .replace(/<[^>]+>/g, " ")
      .replace(/\s+/g, " ")
      .trim(),
  );
  return { diff: match[1] !== undefined, cells };
}

describe("the reconciliation page", () => {
  it("marks a day red where a column differs (a usage row the tenant object never admitted), and drills into its hour", async () => {
    clock.set("2027-09-10T12:00:00.000Z");
    const t = await seedTenant();
    // A usage row written behind the pipeline's back: admitted 0, usage rows 1.
    await withDb((db) =>
      db.insert(usageEvents).values({
        id: newId("req"),
        tenantId: t.tenantId,
        keyId: t.keyId,
        env: "live",
        method: "GET",
        route: "/v1/",
        status: 200,
        billable: false,
        units: 0,
        bytesIn: 0,
        bytesOut: 0,
        latencyMs: 5,
        ts: new Date("2027-09-08T05:20:00.000Z"),
      }),
    );
    const web = await consoleSession();
    const html = await web.page(`/console/reconciliation?tenant=${t.tenantId}`);
    const day = rowOf(html, 'data-day="2027-09-08"');
    expect(day?.diff).toBe(true);
    // day, admitted, usage rows, billable units, outbox, pending, failed, Stripe, check
    expect(day?.cells.slice(1)).toEqual(["0", "1", "0", "0", "0", "0", "0", "DIFF"]);
    const clean = rowOf(html, 'data-day="2027-09-09"');
    expect(clean?.diff).toBe(false);
    expect(clean?.cells.at(-1)).toBe("ok");
    expect(html).toContain(`href="/console/reconciliation?day=2027-09-08&amp;tenant=${t.tenantId}"`);
    // All tenants: the day is red there too.
    expect(rowOf(await web.page("/console/reconciliation"), 'data-day="2027-09-08"')?.diff).toBe(true);

    const detail = await web.page(`/console/reconciliation?day=2027-09-08&tenant=${t.tenantId}`);
    const hour = rowOf(detail, 'data-hour="2027-09-08T05:00:00.000Z"');
    expect(hour?.diff).toBe(true);
    expect(hour?.cells[1]).toBe(t.slug);
    expect(hour?.cells.at(-1)).toBe("DIFF");

    for (const bad of [
      "?days=0",
      "?days=32",
      "?day=2027-13-45",
      "?day=yesterday",
      `?tenant=${"x".repeat(65)}`,
    ])
      expect((await web.get(`/console/reconciliation${bad}`)).status, bad).toBe(400);
  });
});
