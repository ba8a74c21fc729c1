/**
 * The money loop end to end, through real parts only: requests through the proxy, the queue
 * consumer into Postgres, the reporter's meter events to the Stripe stand-in, the stand-in's own
 * invoices, payments and events (its clock moved past the period end), those events delivered
 * signed to `POST /webhooks/stripe`, and what the tenant then sees and may do. The usage line of
 * the stand-in's invoice equals the billing view's amount and the tier sum computed by hand — also
 * for the units of the hour the subscription started in and of hours before a late subscription.
 * Dunning, duplicates, reordering and stale snapshots are driven by the stand-in's real events.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { controlledClock } from "../support/clock";
import { grant, PREPAID, settlesAt } from "../support/credits";
import { withDb } from "../support/db";
import { admin, bearer, createPlan, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, reconciliation, runCron, deliver as toConsumer } from "../support/metering";
import { STANDIN, standinStripe } from "../support/stripe-standin";
import { advanceStandinTo, setPaymentOutcome, standinNow } from "../support/stripe-standin-control";
import { deliver, postWebhook, readTenant, sign } from "../support/stripe-webhooks";

const clock = controlledClock();
const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });
const HOUR = 3_600_000;
const DAY_S = 86_400;
/** BILLING_GRACE_PERIOD_S in wrangler.toml: 7 days. */
const GRACE_MS = 7 * 86_400_000;

/** 29.00 a month with 10 units included; the next 30 units at 0.03; then 0.01 a unit plus 7.00 once. */
const METERED = {
  entitlements: ["api", "reports"],
  pricing: {
    model: "metered",
    currency: "usd",
    baseFee: 2900,
    includedUnits: 10,
    tiers: [
      { upTo: 30, unitAmount: 3 },
      { upTo: null, unitAmount: 1, flatAmount: 700 },
    ],
  },
};

interface Billing {
  period: { start: string; end: string };
  units: { used: number };
  amount: { baseFee: number; usage: number; total: number } | null;
}

interface InvoiceOut {
  id: string;
  number: string | null;
  status: string;
  total: number;
  amountPaid: number;
  period: { start: string; end: string };
  hostedInvoiceUrl: string | null;
  invoicePdf: string | null;
}

interface Subscribed {
  tenantId: string;
  key: string;
  customer: string;
  subscription: Stripe.Subscription;
}

/** A tenant on its own metered plan, with the subscription the billing sync made on the stand-in. */
async function meteredTenant(): Promise<Subscribed> {
  const t = await seedTenant({ plan: METERED });
  return subscribedOf(t.tenantId, t.key);
}

async function subscribedOf(tenantId: string, key: string): Promise<Subscribed> {
  const view = await readTenant(tenantId);
  const billing = (view as unknown as { billing: { customerId: string; subscriptionId: string } }).billing;
  expect(billing.subscriptionId).toMatch(/^sub_/);
  const subscription = await stripe.subscriptions.retrieve(billing.subscriptionId);
  return { tenantId, key, customer: billing.customerId, subscription };
}

const periodEndOf = (s: Stripe.Subscription) => s.items.data[0]?.current_period_end ?? 0;

/** Requests through the proxy, delivered to Postgres by the real queue consumer. */
async function traffic(t: Subscribed, plain: number, reports: number): Promise<void> {
  const events = await captureUsage(async () => {
    for (let i = 0; i < plain + reports; i++) {
      const path = i < plain ? `/v1/loop/${uniq()}` : `/v1/reports/${uniq()}`;
      const res = await gateway(path, { headers: bearer(t.key) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
  }, plain + reports);
  await toConsumer(events);
}

/**
 * The reporter, open hours included, a minute on (an outbox row is due from Postgres's real
 * `now()` at its insert, which the controlled clock, set from the stand-in's whole second, may trail).
 */
async function report() {
  clock.advance(60_000);
  return expectJson<{ sent: number }>(await admin("POST", "/admin/v1/billing/report?openHours=true"), 200);
}

const billingOf = async (key: string) =>
  expectJson<Billing>(await gateway("/gateway/v1/billing", { headers: bearer(key) }), 200);

const invoicesOf = async (key: string) =>
  (
    await expectJson<{ data: InvoiceOut[] }>(
      await gateway("/gateway/v1/invoices", { headers: bearer(key) }),
      200,
    )
  ).data;

/** The stand-in's own events about `customer`, oldest first. */
async function eventsOf(customer: string): Promise<Stripe.Event[]> {
  const all = await stripe.events.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 });
  // Listed newest first.
  return all.filter((e) => (e.data.object as { customer?: unknown }).customer === customer).reverse();
}

/** Delivers events signed to the Worker (reading Stripe from the stand-in); the receiver's answers. */
async function deliverAll(events: Stripe.Event[]): Promise<Record<string, unknown>[]> {
  const answers: Record<string, unknown>[] = [];
  for (const event of events) {
    const res = await deliver(event as unknown as Record<string, unknown>, {
      STRIPE_API_URL: STANDIN.origin,
    });
    answers.push(await expectJson(res, 200));
  }
  return answers;
}

const call = (t: Subscribed) => gateway(`/v1/loop/${uniq()}`, { headers: bearer(t.key) });

describe("the money loop through the stand-in", () => {
  it("usage in the subscription's first hour → reported → the stand-in's invoice = the billing view = units × tiers; paid, shown with its URLs", async () => {
    const t = await meteredTenant();
    const start = t.subscription.start_date;
    // Traffic at the subscription's start: its hour began before it (unless it began on the hour).
    clock.set(start * 1000);
    await traffic(t, 12, 8); // 12 × cost 1 + 8 × cost 5 = 52 units
    expect((await report()).sent).toBeGreaterThanOrEqual(1);

    // By hand: 1..10 included; 11..40 at 3 = 90; 41..52 at 1 = 12, plus 700 once: usage 802.
    const usage = 90 + 12 + 700;
    const view = await billingOf(t.key);
    expect(view.units.used).toBe(52);
    expect(view.amount).toEqual({ baseFee: 2900, usage, total: 2900 + usage });
    expect(view.period).toEqual({
      start: new Date(start * 1000).toISOString(),
      end: new Date(periodEndOf(t.subscription) * 1000).toISOString(),
    });

    await advanceStandinTo(periodEndOf(t.subscription) + 60);
    const made = await stripe.invoices.list({ customer: t.customer, limit: 10 });
    const invoice = made.data.find((i) => i.period_end === periodEndOf(t.subscription));
    expect(invoice).toMatchObject({ status: "paid", total: 2900 + usage });
    expect(invoice?.lines.data.map((l) => l.amount).sort((a, b) => a - b)).toEqual([usage, 2900]);

    const answers = await deliverAll(await eventsOf(t.customer));
    expect(answers.every((a) => a.duplicate !== true)).toBe(true);
    clock.set(periodEndOf(t.subscription) * 1000 + 120_000);
    const shown = await invoicesOf(t.key);
    expect(shown).toEqual([
      expect.objectContaining({
        id: invoice?.id,
        number: invoice?.number,
        status: "paid",
        total: view.amount?.total,
        amountPaid: view.amount?.total,
        period: view.period,
        hostedInvoiceUrl: invoice?.hosted_invoice_url,
        invoicePdf: invoice?.invoice_pdf,
      }),
    ]);
    expect(shown[0]?.number).toMatch(/\S/);
    expect(shown[0]?.hostedInvoiceUrl).toMatch(/^https?:\/\//);
    expect(shown[0]?.invoicePdf).toMatch(/^https?:\/\//);
  });

  it("a metered tenant's units before its subscription exists (Stripe off at the plan change) are held, then billed in its first period", async () => {
    const now = (await standinNow()) * 1000;
    clock.set(now - 2 * HOUR);
    // A free tenant (a Stripe customer, no subscription) moved to a metered plan while Stripe is off.
    const t0 = await seedTenant({ plan: { entitlements: METERED.entitlements } });
    const metered = await createPlan(METERED);
    clock.advance(1000);
    const { STRIPE_SECRET_KEY: _off, ...noStripe } = env;
    const ctx = createExecutionContext();
    const moved = await worker.fetch(
      new Request(`https://gateway.test/admin/v1/tenants/${t0.tenantId}`, {
        method: "PATCH",
        headers: { ...bearer(env.ADMIN_TOKEN), "content-type": "application/json" },
        body: JSON.stringify({ planId: metered.id }),
      }),
      noStripe as typeof env,
      ctx,
    );
    await expectJson(moved, 200);
    await waitOnExecutionContext(ctx);
    const early = await readTenant(t0.tenantId);
    expect(early).toMatchObject({
      billing: { subscriptionId: null, customerId: expect.stringMatching(/^cus_/) },
    });
    clock.advance(1000);
    await traffic({ tenantId: t0.tenantId, key: t0.key } as Subscribed, 5, 4); // 25 units, 2 h early
    clock.set(now);
    await report();
    // Held: sent now, they would land before any period. (Only this tenant's rows: the report sends
    // whatever else is due in the shared database too.)
    const held = await withDb((db) =>
      db.execute<{ state: string; units: string }>(
        sql`SELECT state, sum(units) AS units FROM billing_outbox WHERE tenant_id = ${t0.tenantId} GROUP BY state`,
      ),
    );
    expect(held.rows.map((r) => [r.state, Number(r.units)])).toEqual([["pending", 25]]);

    await runCron(); // the billing sync catches up: the subscription is made now
    const t = await subscribedOf(t0.tenantId, t0.key);
    expect(t.subscription.start_date * 1000).toBeGreaterThanOrEqual(now);
    await report();

    // 25 units: 10 included, 15 at 3 = 45.
    const view = await billingOf(t.key);
    expect(view.units.used).toBe(25);
    expect(view.amount).toEqual({ baseFee: 2900, usage: 45, total: 2945 });
    await advanceStandinTo(periodEndOf(t.subscription) + 60);
    const made = await stripe.invoices.list({ customer: t.customer, limit: 10 });
    expect(made.data.map((i) => i.total)).toEqual([2945]);
    // Reconciled hour by hour: Stripe's units at the start's hour are the held hours'.
    const range = `from=${new Date(now - 3 * HOUR).toISOString()}&to=${new Date(now + HOUR).toISOString()}`;
    const reconciled = await expectJson<{ differences: number; rows: { billableUnits: number }[] }>(
      await admin("GET", `/admin/v1/reconciliation?${range}&tenant=${t.tenantId}`),
      200,
    );
    expect(reconciled.differences).toBe(0);
    expect(reconciled.rows.find((r) => r.billableUnits === 25)).toMatchObject({ stripeUnits: 25 });
  });

  it("dunning: a failed payment → past_due with a warning → 402 after the grace → paid → the next request passes; retries exhausted → suspended", async () => {
    const t = await meteredTenant();
    const end = periodEndOf(t.subscription);
    await setPaymentOutcome(t.customer, "fail");
    await advanceStandinTo(end + 60);
    const failedAt = clock.set(end * 1000 + 120_000);
    const events = await eventsOf(t.customer);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["invoice.payment_failed", "customer.subscription.updated"]),
    );
    await deliverAll(events);
    const pastDue = await readTenant(t.tenantId);
    expect(pastDue).toMatchObject({ status: "past_due" });
    const graceUntil = Date.parse(String((pastDue as unknown as { graceUntil: string }).graceUntil));
    // The grace runs from the failure Stripe reports (its event, on the stand-in's clock).
    expect(graceUntil).toBeGreaterThan(end * 1000 + GRACE_MS - 1);
    expect(graceUntil).toBeLessThanOrEqual(failedAt + GRACE_MS);
    const during = await call(t);
    await during.arrayBuffer();
    expect(during.status).toBe(200);
    expect(during.headers.get("warning")).toMatch(/^299 gateway "Payment past due/);
    clock.set(graceUntil - 1);
    const last = await call(t);
    await last.arrayBuffer();
    expect(last.status).toBe(200);

    clock.set(graceUntil);
    const refused = await call(t);
    expect(await expectJson(refused, 402)).toMatchObject({ code: "payment_required" });

    const [open] = (await stripe.invoices.list({ customer: t.customer, status: "open" })).data;
    await setPaymentOutcome(t.customer, "succeed");
    await stripe.invoices.pay(open?.id ?? "");
    const seen = new Set(events.map((e) => e.id));
    const after = (await eventsOf(t.customer)).filter((e) => !seen.has(e.id));
    expect(after.map((e) => e.type)).toContain("invoice.paid");
    clock.advance(1000);
    await deliverAll(after);
    const next = await call(t);
    await next.arrayBuffer();
    expect(next.status).toBe(200);
    expect(next.headers.get("warning")).toBeNull();
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "active" });

    // The next period's charge fails and every retry too: the stand-in cancels the subscription.
    const nextEnd = periodEndOf(await stripe.subscriptions.retrieve(t.subscription.id));
    await setPaymentOutcome(t.customer, "fail");
    await advanceStandinTo(nextEnd + 20 * DAY_S);
    expect((await stripe.subscriptions.retrieve(t.subscription.id)).status).toBe("canceled");
    const known = new Set([...seen, ...after.map((e) => e.id)]);
    clock.set(nextEnd * 1000 + 20 * DAY_S * 1000);
    await deliverAll((await eventsOf(t.customer)).filter((e) => !known.has(e.id)));
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "suspended", statusReason: "billing" });
    expect(await expectJson(await call(t), 403)).toMatchObject({ code: "tenant_suspended" });
  });

  it("the real events reversed, each twice, and a stale past_due snapshot after the paid one → Stripe's current state, each event applied once", async () => {
    const t = await meteredTenant();
    const end = periodEndOf(t.subscription);
    await setPaymentOutcome(t.customer, "fail");
    await advanceStandinTo(end + 60);
    const [open] = (await stripe.invoices.list({ customer: t.customer, status: "open" })).data;
    await setPaymentOutcome(t.customer, "succeed");
    await stripe.invoices.pay(open?.id ?? "");
    const events = await eventsOf(t.customer);
    const stale = events.find(
      (e) =>
        e.type === "customer.subscription.updated" &&
        (e.data.object as Stripe.Subscription).status === "past_due",
    );
    expect(stale).toBeDefined();
    clock.set(end * 1000 + 120_000);

    const reversed = [...events].reverse();
    const first = await deliverAll(reversed);
    const again = await deliverAll(reversed);
    expect(first.filter((a) => a.duplicate === true)).toEqual([]);
    expect(again.every((a) => a.duplicate === true)).toBe(true);
    // A stale snapshot under a new id (Stripe re-sends state, not history): decided from Stripe's now.
    await deliverAll([{ ...(stale as Stripe.Event), id: `${stale?.id}_late` }]);

    expect(await readTenant(t.tenantId)).toMatchObject({ status: "active" });
    const shown = await invoicesOf(t.key);
    const stripeInvoices = (await stripe.invoices.list({ customer: t.customer, limit: 100 })).data;
    expect(shown.map((i) => i.id).sort()).toEqual(stripeInvoices.map((i) => i.id).sort());
    expect(shown.find((i) => i.id === open?.id)).toMatchObject({ status: "paid", amountPaid: 2900 });
    const res = await call(t);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  });

  it("a real stand-in event with a bad signature changes nothing (400)", async () => {
    const t = await meteredTenant();
    await setPaymentOutcome(t.customer, "fail");
    await advanceStandinTo(periodEndOf(t.subscription) + 60);
    clock.set(periodEndOf(t.subscription) * 1000 + 120_000);
    const failed = (await eventsOf(t.customer)).filter((e) => e.type === "invoice.payment_failed");
    expect(failed).toHaveLength(1);
    const body = JSON.stringify(failed[0]);
    const res = await postWebhook(
      body,
      { "stripe-signature": await sign(body, { secret: "whsec_not_ours" }) },
      { STRIPE_API_URL: STANDIN.origin },
    );
    expect(res.status).toBe(400);
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "active", pastDueSince: null });
    expect(await invoicesOf(t.key)).toEqual([]);
    // The same event, signed right, is applied (so the refusal above was the signature's doing).
    expect((await deliverAll(failed))[0]).not.toMatchObject({ duplicate: true });
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "past_due" });
  });

  it("reconciles to zero after the loop: units admitted = rows = outbox = Stripe; a prepaid tenant's credits too", async () => {
    const t = await meteredTenant();
    clock.set(t.subscription.start_date * 1000);
    await traffic(t, 7, 3);
    await report();
    const metered = await reconciliation(t.tenantId);
    expect(metered.differences).toBe(0);
    expect(metered.rows.reduce((n, r) => n + r.billableUnits, 0)).toBe(22);
    expect(metered.rows.reduce((n, r) => n + (r.stripeUnits ?? 0), 0)).toBe(22);

    const p = await seedTenant({ plan: PREPAID });
    await grant(p.tenantId, 40);
    const events = await captureUsage(
      async () => {
        for (const path of ["/v1/a", "/v1/reports/b", "/v1/c"]) {
          const res = await gateway(path, { headers: bearer(p.key) });
          await res.arrayBuffer();
        }
      },
      3,
      p.tenantId,
    );
    await toConsumer(events);
    await settlesAt(p.tenantId, 33);
    await report();
    const prepaid = await reconciliation(p.tenantId);
    expect(prepaid.creditDifferences).toBe(0);
    expect(prepaid.differences).toBe(0);
  });
});
