import { describe, expect, it } from "vitest";
import { FORGET_AFTER_MS, RouteTenants, USE_DECAY_MS } from "../../workers/edge/route-tenants";
import { fairShare } from "../../workers/edge/shed";

const T0 = 1_800_000_000_000;

/** `tenantId` sends one request every `everyMs` from `from` to `to`, each `originMs` at the origin. */
function periodic(
  tenants: RouteTenants,
  tenantId: string,
  o: { from: number; to: number; everyMs: number; originMs: number },
) {
  for (let at = o.from; at + o.originMs <= o.to; at += o.everyMs) {
    tenants.start(tenantId, at);
    tenants.end(tenantId, o.originMs, at + o.originMs);
  }
}

describe("who uses a route (fair shedding's demands)", () => {
  it("counts what a tenant holds, and between its requests wants its typical concurrency (Little's law)", () => {
    const tenants = new RouteTenants();
    // 2.5 requests a second, 120 ms each: about 0.3 at the origin on average.
    periodic(tenants, "small", { from: T0, to: T0 + 20_000, everyMs: 400, originMs: 120 });
    tenants.start("flooder", T0 + 20_000);
    tenants.start("flooder", T0 + 20_000);
    expect(tenants.held("flooder")).toBe(2);
    expect(tenants.held("small")).toBe(0);
    const [typical] = tenants.othersDemands("flooder", T0 + 20_000);
    expect(typical).toBeGreaterThan(0.25);
    expect(typical).toBeLessThan(0.4);
    // What a tenant holds counts when it is more than its typical concurrency.
    tenants.start("small", T0 + 20_000);
    expect(tenants.othersDemands("flooder", T0 + 20_000)).toEqual([1]);
    // Its own requests are not its competitors'.
    expect(tenants.othersDemands("small", T0 + 20_000)).toEqual([2]);
  });

  it("leaves a flooder room for a quiet tenant's typical concurrency, and forgets it as it decays", () => {
    const tenants = new RouteTenants();
    periodic(tenants, "small", { from: T0, to: T0 + 10_000, everyMs: 200, originMs: 100 });
    // The small tenant held about half a request at a time: a limit of 6 leaves the flooder 5, not 6.
    const now = T0 + 10_000;
    expect(fairShare(6, [100, ...tenants.othersDemands("flooder", now)])).toBe(5);
    // Quiet for five time constants, it is back to under 1 %: the flooder may take the whole limit
    // (but a whole slot of a whole-number limit: shares round down).
    const later = now + 5 * USE_DECAY_MS;
    expect(tenants.othersDemands("flooder", later)[0]).toBeLessThan(0.01);
    expect(fairShare(6, [100, ...tenants.othersDemands("flooder", later)])).toBe(5);
    expect(fairShare(6.5, [100, ...tenants.othersDemands("flooder", later)])).toBe(6);
  });

  it("is alone while no other tenant holds a request there", () => {
    const tenants = new RouteTenants();
    expect(tenants.alone("a")).toBe(true);
    tenants.start("a", T0);
    expect(tenants.alone("a")).toBe(true);
    tenants.start("b", T0);
    expect(tenants.alone("a")).toBe(false);
    expect(tenants.alone("b")).toBe(false);
    tenants.end("b", 5, T0 + 5);
    expect(tenants.alone("a")).toBe(true);
  });

  it("forgets quiet tenants, so an isolate's memory is bounded by the tenants active in the window", () => {
    const tenants = new RouteTenants();
    for (let i = 0; i < 5_000; i++) {
      tenants.start(`t${i}`, T0 + i);
      tenants.end(`t${i}`, 1, T0 + i);
    }
    // Sweeps run as requests end: the tenants quiet for a whole window are gone.
    const later = T0 + 5_000 + FORGET_AFTER_MS;
    for (let i = 0; i < 1_024; i++) {
      tenants.start("busy", later + i);
      tenants.end("busy", 1, later + i);
    }
    expect(tenants.size).toBe(1);
  });
});
