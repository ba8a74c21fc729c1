/**
 * The console's endpoints page: per route across tenants, busiest first, with its top tenants, and
 * a route whose 5xx rate is above 1 % marked failing (class and word).
 */
import { describe, expect, it } from "vitest";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { newId } from "../../workers/shared/ids";
import { controlledClock } from "../support/clock";
import { seedTenant, uniq } from "../support/gateway";
import { deliver } from "../support/metering";
import { usageEvent } from "../support/usage-events";
import { consoleSession } from "../support/web";

const clock = controlledClock();

const events = (n: number, over: Partial<UsageEvent>) =>
  Array.from({ length: n }, () =>
    usageEvent({ id: newId("req"), ts: new Date(Date.now() - 3_600_000).toISOString(), ...over }),
  );

/** A route's row cells as text. */
function rowOf(html: string, route: string): { failing: boolean; cells: string[] } | null {
  const match = new RegExp(`<tr data-route="${route}"( class="failing")?>([\\s\\S]*?)</tr>`).exec(html);
  if (!match) return null;
  const cells = [...(match[2] ?? "").matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) =>
    (m[1] ?? "")
      .replace(/<[^>]+>/g, "")
      .replace(/\s+/g, " ")
      .trim(),
  );
  return { failing: match[1] !== undefined, cells };
}

describe("the endpoints page", () => {
  it("sums each route across tenants, busiest first, with top tenants, and marks a failing route", async () => {
    clock.set("2027-08-01T12:00:00.000Z");
    const a = await seedTenant();
    const b = await seedTenant();
    const busy = `/busy-${uniq()}/`;
    const failing = `/failing-${uniq()}/`;
    const k = (t: { tenantId: string; keyId: string }) => ({ tenantId: t.tenantId, keyId: t.keyId });
    await deliver([
      {
        v: 2,
        events: [
          ...events(30, { ...k(a), route: busy, units: 2, latencyMs: 15 }),
          ...events(10, { ...k(b), route: busy, status: 404, units: 2, latencyMs: 15 }),
          // 1 in 99 is a 5xx: 1.01 %, above the threshold
          ...events(98, { ...k(b), route: failing, latencyMs: 3 }).slice(0, 98),
          ...events(1, { ...k(b), route: failing, status: 502, billable: false, latencyMs: 3 }),
        ],
      },
    ]);
    const web = await consoleSession();
    const html = await web.page("/console/endpoints");
    const busyRow = rowOf(html, busy);
    const failingRow = rowOf(html, failing);
    // route, requests, units, 4xx, 5xx, 5xx rate, p95, top tenants
    expect(busyRow?.cells.slice(1, 7)).toEqual(["40", "80", "10", "0", "0.0 %", "20 ms"]);
    expect(busyRow?.cells[7]).toBe(`${a.slug} 30, ${b.slug} 10`);
    expect(busyRow?.failing).toBe(false);
    expect(failingRow?.cells.slice(1, 6)).toEqual(["99", "98", "0", "1", "1.0 %"]);
    expect(failingRow?.failing).toBe(true);
    expect(failingRow?.cells[0]).toContain("failing");
    // Busiest first.
    expect(html.indexOf(`data-route="${failing}"`)).toBeLessThan(html.indexOf(`data-route="${busy}"`));
    // Out of the 24-hour range two days later; in the 7-day range.
    // (a fresh session: the first one lasted 24 hours).
    clock.set("2027-08-03T12:00:00.000Z");
    const later = await consoleSession();
    expect(rowOf(await later.page("/console/endpoints"), busy)).toBeNull();
    expect(rowOf(await later.page("/console/endpoints?range=7d"), busy)?.cells[1]).toBe("40");
    expect((await later.get("/console/endpoints?range=1y")).status).toBe(400);
  });
});
