/**
 * `POST /webhooks/stripe` through the Worker's real entry: Stripe's signature verified (bad,
 * missing, expired → 400, nothing changed), each event applied once, order-independent (the
 * invoice or subscription is re-read from Stripe — here the fixture in
 * test/support/stripe-fixture-server.ts — and its current state applied), unknown types and
 * customers answered 200 without a change, Stripe unreachable → 503 and the event not recorded.
 */
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { invoices } from "../../schema";
import { openDb } from "../../workers/shared/db";
import { controlledClock } from "../support/clock";
import { expectJson, uniq } from "../support/gateway";
import {
  type BilledTenant,
  deliver,
  invoiceObject,
  postWebhook,
  putStripeObject,
  readTenant,
  seedBilledTenant,
  sign,
  stripeEvent,
  subscriptionObject,
} from "../support/stripe-webhooks";

const clock = controlledClock();
/** Nothing listens on port 1: Stripe unreachable. */
const DEAD_STRIPE = "http://127.0.0.1:1";

async function withDb<T>(fn: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
  const { db, close } = openDb(env);
  try {
    return await fn(db);
  } finally {
    await close();
  }
}

const recorded = (id: string) =>
  withDb(
    async (db) => (await db.execute(sql`select outcome, tenant_id from stripe_events where id = ${id}`)).rows,
  );

/** Stripe's current state of a tenant's subscription, and an invoice on it. */
async function stripeHas(
  t: BilledTenant,
  subscription: string,
  invoice?: { id: string; status: "open" | "paid" },
) {
  await putStripeObject(
    subscriptionObject({ id: t.subscriptionId, customer: t.customerId, status: subscription }),
  );
  if (invoice) {
    await putStripeObject(
      invoiceObject({
        id: invoice.id,
        customer: t.customerId,
        subscription: t.subscriptionId,
        status: invoice.status,
      }),
    );
  }
}

const failed = async (t: BilledTenant, invoiceId: string) =>
  stripeEvent(
    "invoice.payment_failed",
    invoiceObject({ id: invoiceId, customer: t.customerId, subscription: t.subscriptionId, status: "open" }),
  );

describe("signature", () => {
  it("refuses a missing, wrong-secret, tampered or expired signature with 400 and changes nothing", async () => {
    const now = clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = `in_${uniq()}`;
    await stripeHas(t, "past_due", { id: invoiceId, status: "open" });
    const event = await failed(t, invoiceId);
    const body = JSON.stringify(event);
    const nowS = Math.floor(now / 1000);
    const cases: [string, Record<string, string>, string][] = [
      ["missing", {}, body],
      ["wrong secret", { "stripe-signature": await sign(body, { secret: "whsec_someone_else" }) }, body],
      ["tampered body", { "stripe-signature": await sign(body) }, body.replace("payment_failed", "paid")],
      ["older than 300 s", { "stripe-signature": await sign(body, { timestamp: nowS - 301 }) }, body],
      ["garbage", { "stripe-signature": "t=1,v1=abc" }, body],
    ];
    for (const [what, headers, payload] of cases) {
      const res = await postWebhook(payload, headers);
      const problem = await expectJson(res, 400);
      expect(problem, what).toMatchObject({ code: "bad_request", status: 400 });
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    expect(await recorded(event.id as string)).toEqual([]);
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "active", pastDueSince: null });

    // The same body, signed 300 s ago (the tolerance's edge), is applied.
    const ok = await postWebhook(body, { "stripe-signature": await sign(body, { timestamp: nowS - 300 }) });
    expect(await expectJson(ok, 200)).toEqual({ received: true, duplicate: false, outcome: "applied" });
    expect((await readTenant(t.tenantId)).status).toBe("past_due");
  });

  it("answers 503 misconfigured without STRIPE_WEBHOOK_SECRET, and 400 for a signed body that is not a Stripe event", async () => {
    const event = stripeEvent("invoice.paid", { id: "in_x" });
    const body = JSON.stringify(event);
    const unset = await postWebhook(
      body,
      { "stripe-signature": await sign(body) },
      { STRIPE_WEBHOOK_SECRET: undefined },
    );
    expect(await expectJson(unset, 503)).toMatchObject({
      code: "misconfigured",
      detail: expect.stringContaining("STRIPE_WEBHOOK_SECRET"),
    });
    const notJson = "{ not json";
    expect(
      await expectJson(await postWebhook(notJson, { "stripe-signature": await sign(notJson) }), 400),
    ).toMatchObject({
      code: "bad_request",
      detail: "The signed body is not JSON.",
    });
    const notEvent = JSON.stringify({ hello: "stripe" });
    expect(
      await expectJson(await postWebhook(notEvent, { "stripe-signature": await sign(notEvent) }), 400),
    ).toMatchObject({ code: "validation_failed" });
  });

  it("refuses a body over 1 MiB with 413 before verifying anything", async () => {
    const big = JSON.stringify({ pad: "x".repeat(1024 * 1024) });
    const res = await postWebhook(big, { "stripe-signature": "t=1,v1=abc" });
    expect(await expectJson(res, 413)).toMatchObject({ code: "payload_too_large" });
  });
});

describe("applied once, in any order", () => {
  it("applies a redelivered event once: the duplicate changes nothing, even when Stripe's state moved since", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = `in_${uniq()}`;
    await stripeHas(t, "past_due", { id: invoiceId, status: "open" });
    const event = await failed(t, invoiceId);
    expect(await expectJson(await deliver(event), 200)).toMatchObject({
      duplicate: false,
      outcome: "applied",
    });
    const first = await readTenant(t.tenantId);
    expect(first).toMatchObject({ status: "past_due", statusReason: "billing" });

    // Stripe now says paid; a redelivery of the old event must not be applied again (it would make it active).
    await stripeHas(t, "active", { id: invoiceId, status: "paid" });
    clock.advance(60_000);
    expect(await expectJson(await deliver(event), 200)).toEqual({ received: true, duplicate: true });
    expect(await readTenant(t.tenantId)).toEqual(first);
    expect(await recorded(event.id as string)).toEqual([{ outcome: "applied", tenant_id: t.tenantId }]);
  });

  it("applies two concurrent deliveries of one event once", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = `in_${uniq()}`;
    await stripeHas(t, "past_due", { id: invoiceId, status: "open" });
    const event = await failed(t, invoiceId);
    const answers = await Promise.all(
      [deliver(event), deliver(event)].map(async (r) => expectJson(await r, 200)),
    );
    expect(answers.map((a) => a.duplicate).sort()).toEqual([false, true]);
    expect(await recorded(event.id as string)).toEqual([{ outcome: "applied", tenant_id: t.tenantId }]);
  });

  it("ends in Stripe's current state when invoice.paid arrives before the payment_failed of the same invoice", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = `in_${uniq()}`;
    const lateFailure = await failed(t, invoiceId);
    // The retry succeeded: Stripe has the invoice paid and the subscription active.
    await stripeHas(t, "active", { id: invoiceId, status: "paid" });
    const paid = stripeEvent(
      "invoice.paid",
      invoiceObject({
        id: invoiceId,
        customer: t.customerId,
        subscription: t.subscriptionId,
        status: "paid",
      }),
    );
    await expectJson(await deliver(paid), 200);
    await expectJson(await deliver(lateFailure), 200);
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "active",
      pastDueSince: null,
      graceUntil: null,
    });
    const [row] = await withDb((db) => db.select().from(invoices).where(eq(invoices.id, invoiceId)));
    expect(row).toMatchObject({
      tenantId: t.tenantId,
      stripeSubscriptionId: t.subscriptionId,
      status: "paid",
      currency: "usd",
      total: 4900,
      amountPaid: 4900,
      amountRemaining: 0,
      number: `INV-${invoiceId.slice(-6)}`,
      hostedInvoiceUrl: `https://invoice.stripe.com/i/${invoiceId}`,
      invoicePdf: `https://pay.stripe.com/invoice/${invoiceId}/pdf`,
      periodStart: new Date(1_796_000_000_000),
      periodEnd: new Date(1_798_592_000_000),
    });
  });

  it("ends in Stripe's current state when subscription events arrive reversed, and keeps the period end current", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const snapshot = (status: string) =>
      stripeEvent(
        "customer.subscription.updated",
        subscriptionObject({ id: t.subscriptionId, customer: t.customerId, status }),
      );
    const older = snapshot("past_due");
    const newer = snapshot("unpaid");
    await putStripeObject(
      subscriptionObject({
        id: t.subscriptionId,
        customer: t.customerId,
        status: "unpaid",
        periodEnd: 1_801_000_000,
      }),
    );
    await expectJson(await deliver(newer), 200);
    await expectJson(await deliver(older), 200);
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "suspended",
      statusReason: "billing",
      billing: { periodEnd: new Date(1_801_000_000_000).toISOString() },
    });
  });
});

describe("nothing to do", () => {
  it("answers an unknown event type 200 ignored, recorded, with no Stripe read and no change", async () => {
    const event = stripeEvent("customer.tax_id.created", { id: `txi_${uniq()}` });
    // A dead Stripe proves no read is made for it.
    const res = await deliver(event, { STRIPE_API_URL: DEAD_STRIPE });
    expect(await expectJson(res, 200)).toEqual({ received: true, duplicate: false, outcome: "ignored" });
    expect(await recorded(event.id as string)).toEqual([{ outcome: "ignored", tenant_id: null }]);
  });

  it("answers an event for an unknown customer 200, changing nothing", async () => {
    const t = await seedBilledTenant();
    const stranger = `cus_${uniq()}`;
    const invoiceId = `in_${uniq()}`;
    await putStripeObject(
      invoiceObject({ id: invoiceId, customer: stranger, subscription: t.subscriptionId, status: "open" }),
    );
    await putStripeObject(
      subscriptionObject({ id: t.subscriptionId, customer: t.customerId, status: "past_due" }),
    );
    const event = stripeEvent("invoice.payment_failed", { id: invoiceId, customer: stranger });
    expect(await expectJson(await deliver(event), 200)).toMatchObject({ outcome: "unknown_customer" });
    expect((await readTenant(t.tenantId)).status).toBe("active");
    expect(await withDb((db) => db.select().from(invoices).where(eq(invoices.id, invoiceId)))).toEqual([]);
  });

  it("leaves the tenant alone when another of its customer's subscriptions is canceled (e.g. the one a plan move replaced)", async () => {
    const t = await seedBilledTenant();
    const old = `sub_${uniq()}`;
    await putStripeObject(subscriptionObject({ id: old, customer: t.customerId, status: "canceled" }));
    const event = stripeEvent("customer.subscription.deleted", { id: old, customer: t.customerId });
    expect(await expectJson(await deliver(event), 200)).toMatchObject({ outcome: "other_subscription" });
    expect((await readTenant(t.tenantId)).status).toBe("active");
  });

  it("answers 503 while Stripe is unreachable, records nothing, and applies the redelivery once Stripe answers", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = `in_${uniq()}`;
    await stripeHas(t, "past_due", { id: invoiceId, status: "open" });
    const event = await failed(t, invoiceId);
    const down = await deliver(event, { STRIPE_API_URL: DEAD_STRIPE });
    expect(await expectJson(down, 503)).toMatchObject({ code: "service_unavailable" });
    expect(await recorded(event.id as string)).toEqual([]);
    expect((await readTenant(t.tenantId)).status).toBe("active");
    expect(await expectJson(await deliver(event), 200)).toMatchObject({
      duplicate: false,
      outcome: "applied",
    });
    expect((await readTenant(t.tenantId)).status).toBe("past_due");
  });
});
