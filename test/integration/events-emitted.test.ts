/**
 * The control plane's events (workers/events/catalog.ts), each emitted exactly once per change through
 * the real entry that makes the change: the admin and tenant APIs' key calls, PATCH of a tenant, the
 * Stripe webhook (dunning, invoices) and a paid credit checkout; nothing for a change that changes
 * nothing or a redelivered Stripe event. The crons' events: `key.expiring` once per key and expiry
 * however often the job runs, `route.deprecated` only to the tenants that called the route in the
 * last 30 days, once per dates. And the fan-out: an endpoint gets deliveries only for its types.
 */
import { env } from "cloudflare:workers";
import { asc, eq } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { usageRollups, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../schema";
import type { Route } from "../../workers/edge/route-table";
import { keyExpiryCron } from "../../workers/events/key-expiry";
import { announceDeprecatedRoutes } from "../../workers/events/route-notices";
import { PREPAID } from "../support/credits";
import { withDb } from "../support/db";
import {
  admin,
  bearer,
  createKey,
  createPlan,
  expectJson,
  gateway,
  seedTenant,
  type TenantFixture,
  uniq,
} from "../support/gateway";
import { billPeriod, payInvoice, stripe } from "../support/stripe-billing-cycle";
import { deliver, seedBilledTenant } from "../support/stripe-webhooks";

const DAY_MS = 86_400_000;

/** The tenant's stored events, oldest first. */
const eventsOf = (tenantId: string) =>
  withDb((db) =>
    db
      .select({ id: webhookEvents.id, type: webhookEvents.type, data: webhookEvents.data })
      .from(webhookEvents)
      .where(eq(webhookEvents.tenantId, tenantId))
      .orderBy(asc(webhookEvents.createdAt), asc(webhookEvents.id)),
  );

const typesOf = async (tenantId: string) => (await eventsOf(tenantId)).map((e) => e.type);

interface Key {
  id: string;
  key: string;
  prefix: string;
  name: string | null;
  env: string;
}

describe("key events", () => {
  it("admin API: create → key.created, revoke twice → one key.revoked, rotate → one key.rotated (old → new, grace end)", async () => {
    const t = await seedTenant();
    const before = await typesOf(t.tenantId);
    const created = await expectJson<Key>(
      await admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { name: "ci", env: "test" }),
      201,
    );
    const revoked = await expectJson<{ revokedAt: string }>(
      await admin("DELETE", `/admin/v1/keys/${created.id}`),
      200,
    );
    await expectJson(await admin("DELETE", `/admin/v1/keys/${created.id}`), 200);
    const rotated = await expectJson<{ key: { id: string }; previous: { expiresAt: string } }>(
      await admin("POST", `/admin/v1/keys/${t.keyId}/rotate`, { gracePeriodSeconds: 3600 }),
      201,
    );
    // A revoked key can't be rotated: nothing changes, nothing is emitted.
    expect((await admin("POST", `/admin/v1/keys/${created.id}/rotate`, {})).status).toBe(409);

    const events = (await eventsOf(t.tenantId)).slice(before.length);
    expect(events.map(({ type, data }) => ({ type, data }))).toEqual([
      {
        type: "key.created",
        data: { keyId: created.id, env: "test", prefix: created.prefix, name: "ci" },
      },
      { type: "key.revoked", data: { keyId: created.id, revokedAt: revoked.revokedAt } },
      {
        type: "key.rotated",
        data: { keyId: t.keyId, newKeyId: rotated.key.id, oldKeyExpiresAt: rotated.previous.expiresAt },
      },
    ]);
    expect(new Date(rotated.previous.expiresAt).getTime()).toBeGreaterThan(Date.now());
  });

  it("tenant API: POST /gateway/v1/keys → key.created; DELETE → key.revoked", async () => {
    const t = await seedTenant();
    const before = (await typesOf(t.tenantId)).length;
    const res = await gateway("/gateway/v1/keys", {
      method: "POST",
      headers: { ...bearer(t.key), "content-type": "application/json" },
      body: JSON.stringify({ name: "from-the-tenant" }),
    });
    const created = await expectJson<Key>(res, 201);
    const del = await gateway(`/gateway/v1/keys/${created.id}`, { method: "DELETE", headers: bearer(t.key) });
    expect(del.status).toBe(200);
    const events = (await eventsOf(t.tenantId)).slice(before);
    expect(events.map(({ type, data }) => ({ type, data }))).toEqual([
      {
        type: "key.created",
        data: { keyId: created.id, env: created.env, prefix: created.prefix, name: "from-the-tenant" },
      },
      { type: "key.revoked", data: { keyId: created.id, revokedAt: expect.any(String) } },
    ]);
  });
});

describe("tenant events", () => {
  it("PATCH plan → plan.changed with both names; PATCH status → tenant.status.changed (operator); the same values again → nothing", async () => {
    const t = await seedTenant();
    const next = await createPlan();
    const patch = (body: unknown) => admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, body);
    await expectJson(await patch({ planId: next.id }), 200);
    await expectJson(await patch({ planId: next.id }), 200);
    await expectJson(await patch({ status: "suspended" }), 200);
    await expectJson(await patch({ status: "suspended", name: "renamed" }), 200);
    await expectJson(await patch({ overrides: { dailyQuota: 10 } }), 200);
    await expectJson(await patch({ status: "active" }), 200);

    const events = await eventsOf(t.tenantId);
    expect(events.filter((e) => e.type !== "key.created").map(({ type, data }) => ({ type, data }))).toEqual([
      {
        type: "plan.changed",
        data: { from: { id: t.plan.id, name: t.plan.name }, to: { id: next.id, name: next.name } },
      },
      { type: "tenant.status.changed", data: { from: "active", to: "suspended", reason: "operator" } },
      { type: "tenant.status.changed", data: { from: "suspended", to: "active", reason: "operator" } },
    ]);
  });
});

describe("billing events (Stripe webhooks)", () => {
  it("a declined charge → invoice.payment_failed and tenant.status.changed (billing), once though Stripe redelivers; paying → invoice.paid and back to active", async () => {
    const t = await seedBilledTenant();
    const bill = await billPeriod(t, "fail");
    const failed = bill.one("invoice.payment_failed");
    await expectJson(await deliver(failed), 200);
    expect(await expectJson(await deliver(failed), 200)).toMatchObject({ duplicate: true });
    // The subscription's own update says the same (past_due): no second status change.
    await expectJson(await deliver(bill.last("customer.subscription.updated")), 200);

    const invoice = await stripe.invoices.retrieve(bill.invoiceId);
    const paid = await payInvoice(t, bill.invoiceId);
    await expectJson(await deliver(paid.one("invoice.paid")), 200);
    await expectJson(await deliver(paid.one("invoice.paid")), 200);
    // Another event about the same, now paid, invoice: still one invoice.paid.
    await expectJson(await deliver(bill.one("invoice.finalized")), 200);
    const paidInvoice = await stripe.invoices.retrieve(bill.invoiceId);

    // Events recorded in one transaction share its instant: compare in a fixed order.
    const events = (await eventsOf(t.tenantId))
      .filter((e) => e.type !== "key.created")
      .map(({ type, data }) => ({ type, data }));
    const byType = (a: { type: string }, b: { type: string }) => a.type.localeCompare(b.type);
    expect([...events.slice(0, 2)].sort(byType)).toEqual([
      {
        type: "invoice.payment_failed",
        data: {
          invoiceId: bill.invoiceId,
          number: invoice.number,
          currency: invoice.currency,
          amountDue: invoice.amount_due,
        },
      },
      { type: "tenant.status.changed", data: { from: "active", to: "past_due", reason: "billing" } },
    ]);
    expect([...events.slice(2)].sort(byType)).toEqual([
      {
        type: "invoice.paid",
        data: {
          invoiceId: bill.invoiceId,
          number: paidInvoice.number,
          currency: paidInvoice.currency,
          amountPaid: paidInvoice.amount_paid,
        },
      },
      { type: "tenant.status.changed", data: { from: "past_due", to: "active", reason: "billing" } },
    ]);
    expect(paidInvoice.amount_paid).toBeGreaterThan(0);
  });

  it("a paid credit checkout → credits.purchased (units, balance) once, though its event is delivered twice and replayed", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const out = await expectJson<{ id: string; url: string }>(
      await gateway("/gateway/v1/credits/checkout", {
        method: "POST",
        headers: { ...bearer(t.key), "content-type": "application/json" },
        body: JSON.stringify({ packs: 2 }),
      }),
      201,
    );
    expect((await fetch(out.url, { method: "POST", redirect: "manual" })).status).toBeLessThan(400);
    const listed = await stripe.events.list({ type: "checkout.session.completed", limit: 100 });
    const event = listed.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === out.id);
    if (!event) throw new Error("the stand-in recorded no checkout.session.completed");
    await expectJson(await deliver(event), 200);
    await expectJson(await deliver(event), 200);
    await expectJson(await deliver({ ...event, id: `${event.id}_again` }), 200);

    const events = (await eventsOf(t.tenantId)).filter((e) => e.type === "credits.purchased");
    expect(events).toEqual([
      { id: `evt_credits_${out.id}`, type: "credits.purchased", data: { units: 200, balance: 200 } },
    ]);
  });
});

describe("key.expiring (cron)", () => {
  it("announces a key 7 days ahead once across runs, again when its expiry changes; never a revoked key, a far one, or one a rotation ends", async () => {
    const t = await seedTenant();
    const inDays = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString();
    const soon = await createKey(t.tenantId, { expiresAt: inDays(3) });
    const far = await createKey(t.tenantId, { expiresAt: inDays(10) });
    const revoked = await createKey(t.tenantId, { expiresAt: inDays(2) });
    await expectJson(await admin("DELETE", `/admin/v1/keys/${revoked.id}`), 200);
    const old = await createKey(t.tenantId, { expiresAt: inDays(5) });
    const rotated = await expectJson<{ key: { id: string; expiresAt: string } }>(
      await admin("POST", `/admin/v1/keys/${old.id}/rotate`, { gracePeriodSeconds: 3600 }),
      201,
    );

    const expiring = async () =>
      (await eventsOf(t.tenantId))
        .filter((e) => e.type === "key.expiring")
        .map(({ id, data }) => ({ id, data }));
    const notice = (keyId: string, expiresAt: string) => ({
      id: `evt_keyexp_${keyId}_${Math.floor(Date.parse(expiresAt) / 1000)}`,
      data: { keyId, expiresAt: new Date(expiresAt).toISOString() },
    });
    const soonRow = await expectJson<{ expiresAt: string }>(
      await admin("GET", `/admin/v1/keys/${soon.id}`),
      200,
    );

    await keyExpiryCron(env);
    await keyExpiryCron(env, Date.now() + 60_000);
    expect(await expiring()).toEqual([
      notice(soon.id, soonRow.expiresAt),
      notice(rotated.key.id, rotated.key.expiresAt),
    ]);

    const moved = inDays(4);
    await expectJson(await admin("PATCH", `/admin/v1/keys/${soon.id}`, { expiresAt: moved }), 200);
    await keyExpiryCron(env);
    await keyExpiryCron(env);
    expect(await expiring()).toEqual([
      notice(soon.id, soonRow.expiresAt),
      notice(rotated.key.id, rotated.key.expiresAt),
      notice(soon.id, moved),
    ]);
    // The far key is announced once it is within 7 days.
    await keyExpiryCron(env, Date.now() + 4 * DAY_MS);
    expect((await expiring()).map((e) => (e.data as { keyId: string }).keyId)).toContain(far.id);
  });
});

describe("route.deprecated (cron)", () => {
  async function called(t: TenantFixture, route: string, daysAgo: number, requests = 3) {
    const day = Math.floor((Date.now() - daysAgo * DAY_MS) / DAY_MS) * DAY_MS;
    await withDb((db) =>
      db.insert(usageRollups).values({
        tenantId: t.tenantId,
        granularity: "day",
        bucketStart: new Date(day),
        route,
        statusClass: 2,
        requests,
        billableRequests: requests,
        billableUnits: requests,
        bytesIn: 0,
        bytesOut: 0,
        latencyHistogram: [],
      }),
    );
    return new Date(day).toISOString();
  }

  it("tells the tenants that called the route in the last 30 days, once; again when its dates change", async () => {
    const prefix = `/v1/old-${uniq()}/`;
    const [recent, stale, elsewhere] = await Promise.all([seedTenant(), seedTenant(), seedTenant()]);
    await called(recent, prefix, 20);
    const lastDay = await called(recent, prefix, 2);
    await called(stale, prefix, 40);
    await called(elsewhere, "/v1/", 1);
    const route = (dates: Partial<Route>): Route[] => [
      { prefix: "/v1/", cost: 1, billable: true },
      { prefix, cost: 1, billable: true, ...dates },
    ];
    const first = route({ deprecation: "2026-01-01T00:00:00Z", sunset: "2027-01-01T00:00:00+01:00" });
    const deprecated = async (t: TenantFixture) =>
      (await eventsOf(t.tenantId)).filter((e) => e.type === "route.deprecated").map((e) => e.data);

    await withDb((db) => announceDeprecatedRoutes(env, db, first));
    await withDb((db) => announceDeprecatedRoutes(env, db, first));
    const announced = {
      route: prefix,
      deprecation: "2026-01-01T00:00:00.000Z",
      sunset: "2026-12-31T23:00:00.000Z",
      lastCalledAt: lastDay,
    };
    expect(await deprecated(recent)).toEqual([announced]);
    expect(await deprecated(stale)).toEqual([]);
    expect(await deprecated(elsewhere)).toEqual([]);

    const later = route({ deprecation: "2026-01-01T00:00:00Z", sunset: "2027-06-01T00:00:00Z" });
    await withDb((db) => announceDeprecatedRoutes(env, db, later));
    await withDb((db) => announceDeprecatedRoutes(env, db, later));
    expect(await deprecated(recent)).toEqual([
      announced,
      { ...announced, sunset: "2027-06-01T00:00:00.000Z" },
    ]);
    expect(await deprecated(stale)).toEqual([]);
  });
});

describe("fan-out", () => {
  it("an endpoint subscribed to key.* types gets deliveries only for those; one with no types gets all; a disabled one none", async () => {
    const t = await seedTenant();
    const endpoint = (eventTypes: string[], enabled = true) => ({
      id: `whep_${uniq()}${uniq()}`,
      tenantId: t.tenantId,
      url: `http://127.0.0.1:9/${uniq()}`,
      eventTypes,
      enabled,
      secret: `whsec_${btoa(uniq().repeat(4))}`,
    });
    const keysOnly = endpoint(["key.created", "key.revoked", "key.rotated", "key.expiring"]);
    const all = endpoint([]);
    const off = endpoint([], false);
    await withDb((db) => db.insert(webhookEndpoints).values([keysOnly, all, off]));

    await createKey(t.tenantId, { name: "fan" });
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);

    const deliveries = await withDb((db) =>
      db
        .select({
          endpointId: webhookDeliveries.endpointId,
          type: webhookEvents.type,
          status: webhookDeliveries.status,
        })
        .from(webhookDeliveries)
        .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
        .where(eq(webhookDeliveries.tenantId, t.tenantId)),
    );
    const to = (id: string) =>
      deliveries
        .filter((d) => d.endpointId === id)
        .map((d) => d.type)
        .sort();
    expect(to(keysOnly.id)).toEqual(["key.created"]);
    expect(to(all.id)).toEqual(["key.created", "tenant.status.changed"]);
    expect(to(off.id)).toEqual([]);
    expect(deliveries.every((d) => d.status === "pending")).toBe(true);
  });
});
