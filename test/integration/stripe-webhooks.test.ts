/**
 * `POST /webhooks/stripe` through the Worker's real entry, with the Stripe side made by the Stripe
 * stand-in (test/support/stripe-billing-cycle.ts: real invoices at period end, declined and paid
 * charges, retries) and its own recorded events delivered signed: Stripe's signature verified (bad,
 * missing, expired → 400, nothing changed), each event applied once, order-independent (the invoice
 * or subscription is re-read from the stand-in and its current state applied, whatever snapshot the
 * event carries), unknown types and customers answered 200 without a change, Stripe unreachable (a
 * dead port) → 503 and the event not recorded.
 */
import { eq, sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { invoices } from "../../schema";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, createPlan, expectJson } from "../support/gateway";
import {
  billPeriod,
  payInvoice,
  periodEnd,
  recording,
  retryCharge,
  retryRules,
  stripe,
} from "../support/stripe-billing-cycle";
import { advanceStandinTo } from "../support/stripe-standin-control";
import { deliver, postWebhook, readTenant, seedBilledTenant, sign } from "../support/stripe-webhooks";

const clock = controlledClock();
/** Nothing listens on port 1: Stripe unreachable. */
const DEAD_STRIPE = "http://127.0.0.1:1";

const recorded = (id: string) =>
  withDb(
    async (db) => (await db.execute(sql`select outcome, tenant_id from stripe_events where id = ${id}`)).rows,
  );

/** A billed tenant whose first period's charge the stand-in declined, and the `invoice.payment_failed` it recorded. */
async function declined() {
  const t = await seedBilledTenant();
  const bill = await billPeriod(t, "fail");
  return { t, invoiceId: bill.invoiceId, event: bill.one("invoice.payment_failed") };
}

describe("signature", () => {
  it("refuses a missing, wrong-secret, tampered or expired signature with 400 and changes nothing", async () => {
    const now = clock.set(Date.now());
    const { t, event } = await declined();
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
    expect(await recorded(event.id)).toEqual([]);
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "active", pastDueSince: null });

    // The same body, signed 300 s ago (the tolerance's edge), is applied.
    const ok = await postWebhook(body, { "stripe-signature": await sign(body, { timestamp: nowS - 300 }) });
    expect(await expectJson(ok, 200)).toEqual({ received: true, duplicate: false, outcome: "applied" });
    expect((await readTenant(t.tenantId)).status).toBe("past_due");
  });

  it("answers 503 misconfigured without STRIPE_WEBHOOK_SECRET, and 400 for a signed body that is not a Stripe event", async () => {
    const { event } = await declined();
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
    expect(await recorded(event.id)).toEqual([]);
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
    const { t, invoiceId, event } = await declined();
    expect(await expectJson(await deliver(event), 200)).toMatchObject({
      duplicate: false,
      outcome: "applied",
    });
    const first = await readTenant(t.tenantId);
    expect(first).toMatchObject({ status: "past_due", statusReason: "billing" });

    // Stripe now says paid; a redelivery of the old event must not be applied again (it would make it active).
    await payInvoice(t, invoiceId);
    expect((await stripe.subscriptions.retrieve(t.subscriptionId)).status).toBe("active");
    clock.advance(60_000);
    expect(await expectJson(await deliver(event), 200)).toEqual({ received: true, duplicate: true });
    expect(await readTenant(t.tenantId)).toEqual(first);
    expect(await recorded(event.id)).toEqual([{ outcome: "applied", tenant_id: t.tenantId }]);
  });

  it("applies two concurrent deliveries of one event once", async () => {
    clock.set(Date.now());
    const { t, event } = await declined();
    const answers = await Promise.all(
      [deliver(event), deliver(event)].map(async (r) => expectJson(await r, 200)),
    );
    expect(answers.map((a) => a.duplicate).sort()).toEqual([false, true]);
    expect(await recorded(event.id)).toEqual([{ outcome: "applied", tenant_id: t.tenantId }]);
  });

  it("ends in Stripe's current state when invoice.paid arrives before the payment_failed of the same invoice", async () => {
    clock.set(Date.now());
    const { t, invoiceId, event: lateFailure } = await declined();
    // The invoice is paid: Stripe has it paid and the subscription active again.
    const paid = (await payInvoice(t, invoiceId)).one("invoice.paid");
    await expectJson(await deliver(paid), 200);
    await expectJson(await deliver(lateFailure), 200);
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "active",
      pastDueSince: null,
      graceUntil: null,
    });
    const invoice = await stripe.invoices.retrieve(invoiceId);
    expect(invoice).toMatchObject({ status: "paid", total: 4900, amount_paid: 4900, amount_remaining: 0 });
    const [row] = await withDb((db) => db.select().from(invoices).where(eq(invoices.id, invoiceId)));
    expect(row).toMatchObject({
      tenantId: t.tenantId,
      stripeSubscriptionId: t.subscriptionId,
      status: "paid",
      currency: "usd",
      total: 4900,
      amountPaid: 4900,
      amountRemaining: 0,
      number: invoice.number,
      hostedInvoiceUrl: invoice.hosted_invoice_url,
      invoicePdf: invoice.invoice_pdf,
      periodStart: new Date(invoice.period_start * 1000),
      periodEnd: new Date(invoice.period_end * 1000),
    });
    expect(invoice.number).toMatch(/^[A-Z0-9]+-0001$/);
  });

  it("ends in Stripe's current state when subscription events arrive reversed, and keeps the period end current", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    // Two declined charges a day apart, then the subscription is left unpaid.
    await retryRules({ attempts: 2, interval_days: 1, exhausted: "unpaid" });
    const bill = await billPeriod(t, "fail");
    const older = bill.last("customer.subscription.updated");
    expect((older.data.object as Stripe.Subscription).status).toBe("past_due");
    const newer = (await retryCharge(t, bill.invoiceId)).one("customer.subscription.updated");
    expect((newer.data.object as Stripe.Subscription).status).toBe("unpaid");
    // The next period ends too: the subscription Stripe has now has a later period end than both snapshots.
    const snapshotEnd = (newer.data.object as Stripe.Subscription).items.data[0]?.current_period_end;
    await advanceStandinTo(await periodEnd(t.subscriptionId));
    const currentEnd = await periodEnd(t.subscriptionId);
    expect(currentEnd).toBeGreaterThan(snapshotEnd ?? Number.POSITIVE_INFINITY);

    await expectJson(await deliver(newer), 200);
    await expectJson(await deliver(older), 200);
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "suspended",
      statusReason: "billing",
      billing: { periodEnd: new Date(currentEnd * 1000).toISOString() },
    });
  });
});

describe("nothing to do", () => {
  it("answers an unknown event type 200 ignored, recorded, with no Stripe read and no change", async () => {
    const t = await seedBilledTenant();
    // The stand-in recorded customer.created for the tenant's customer; the gateway does not act on it.
    const [event] = (await stripe.events.list({ type: "customer.created", limit: 100 })).data.filter(
      (e) => (e.data.object as Stripe.Customer).id === t.customerId,
    );
    if (!event) throw new Error("no customer.created event for the tenant's customer");
    // A dead Stripe proves no read is made for it.
    const res = await deliver(event, { STRIPE_API_URL: DEAD_STRIPE });
    expect(await expectJson(res, 200)).toEqual({ received: true, duplicate: false, outcome: "ignored" });
    expect(await recorded(event.id)).toEqual([{ outcome: "ignored", tenant_id: null }]);
    expect((await readTenant(t.tenantId)).status).toBe("active");
  });

  it("answers an event for an unknown customer 200, changing nothing", async () => {
    const t = await seedBilledTenant();
    // A customer that is no tenant's, on the same prices, whose charge is declined.
    const stranger = await stripe.customers.create({ name: "stranger" });
    const own = await stripe.subscriptions.retrieve(t.subscriptionId);
    const theirs = await stripe.subscriptions.create({
      customer: stranger.id,
      items: own.items.data.map((item) => ({ price: item.price.id })),
    });
    const bill = await billPeriod({ ...t, customerId: stranger.id, subscriptionId: theirs.id }, "fail");
    const event = bill.one("invoice.payment_failed");
    expect(await expectJson(await deliver(event), 200)).toMatchObject({ outcome: "unknown_customer" });
    expect((await readTenant(t.tenantId)).status).toBe("active");
    expect(await recorded(event.id)).toEqual([{ outcome: "unknown_customer", tenant_id: null }]);
    expect(await withDb((db) => db.select().from(invoices).where(eq(invoices.id, bill.invoiceId)))).toEqual(
      [],
    );
  });

  it("leaves the tenant alone when another of its customer's subscriptions is canceled (e.g. the one a plan move replaced)", async () => {
    const t = await seedBilledTenant();
    // A move to a free plan: the billing sync cancels the subscription; the tenant has none now.
    const free = await createPlan();
    const moved = await recording(t.customerId, async () =>
      expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { planId: free.id }), 200),
    );
    const event = moved.one("customer.subscription.deleted");
    expect((event.data.object as Stripe.Subscription).id).toBe(t.subscriptionId);
    expect(await expectJson(await deliver(event), 200)).toMatchObject({ outcome: "other_subscription" });
    expect((await readTenant(t.tenantId)).status).toBe("active");
  });

  it("answers 503 while Stripe is unreachable, records nothing, and applies the redelivery once Stripe answers", async () => {
    clock.set(Date.now());
    const { t, event } = await declined();
    const down = await deliver(event, { STRIPE_API_URL: DEAD_STRIPE });
    expect(await expectJson(down, 503)).toMatchObject({ code: "service_unavailable" });
    expect(down.headers.get("retry-after")).toBe("60");
    expect(await recorded(event.id)).toEqual([]);
    expect((await readTenant(t.tenantId)).status).toBe("active");
    expect(await expectJson(await deliver(event), 200)).toMatchObject({
      duplicate: false,
      outcome: "applied",
    });
    expect((await readTenant(t.tenantId)).status).toBe("past_due");
  });
});
