/**
 * Dunning end to end, through the Worker's real entry on the controlled clock, with the Stripe side
 * made by the Stripe stand-in (test/support/stripe-billing-cycle.ts) and its own recorded events
 * delivered signed: the period's charge declined makes the tenant past due — requests pass with a
 * `Warning` header during the grace period, are refused with 402 from its end — and paying the
 * invoice (`invoice.paid`) brings it back on the very next request; retries that end in an unpaid
 * or canceled subscription suspend it (403); an operator's suspension survives a payment.
 */
import { describe, expect, it } from "vitest";
import { controlledClock } from "../support/clock";
import { admin, bearer, expectJson, gateway, originCalls, uniq } from "../support/gateway";
import { billPeriod, payInvoice, retryCharge, retryRules } from "../support/stripe-billing-cycle";
import { type BilledTenant, deliver, readTenant, seedBilledTenant } from "../support/stripe-webhooks";

const clock = controlledClock();
/** BILLING_GRACE_PERIOD_S in wrangler.toml: 7 days. */
const GRACE_MS = 7 * 86_400_000;

/** The stand-in declines the period's charge; its `invoice.payment_failed` is delivered. Returns the invoice's id. */
async function paymentFails(t: BilledTenant): Promise<string> {
  const bill = await billPeriod(t, "fail");
  await expectJson(await deliver(bill.one("invoice.payment_failed")), 200);
  return bill.invoiceId;
}

/** The invoice is paid at the stand-in; its `invoice.paid` is delivered. */
async function invoicePaid(t: BilledTenant, invoiceId: string): Promise<void> {
  const paid = await payInvoice(t, invoiceId);
  await expectJson(await deliver(paid.one("invoice.paid")), 200);
}

const call = (t: BilledTenant, marker: string) => gateway(`/v1/${marker}`, { headers: bearer(t.key) });
const warning = (graceUntil: number) =>
  `299 gateway "Payment past due; requests will be refused from ${new Date(graceUntil).toUTCString()}"`;

describe("dunning", () => {
  it("payment fails → passes with a warning during the grace → 402 from its end → invoice.paid → passes on the very next request", async () => {
    const t0 = clock.set(Date.now());
    const t = await seedBilledTenant();
    const marker = uniq();
    const invoiceId = await paymentFails(t);
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "past_due",
      statusReason: "billing",
      pastDueSince: new Date(t0).toISOString(),
      graceUntil: new Date(t0 + GRACE_MS).toISOString(),
    });

    const during = await call(t, `${marker}/a`);
    expect(during.status).toBe(200);
    expect(during.headers.get("warning")).toBe(warning(t0 + GRACE_MS));
    const usage = await gateway("/gateway/v1/usage", { headers: bearer(t.key) });
    expect(usage.status).toBe(200);
    expect(usage.headers.get("warning")).toBe(warning(t0 + GRACE_MS));

    clock.set(t0 + GRACE_MS - 1);
    const lastMs = await call(t, `${marker}/b`);
    expect(lastMs.status).toBe(200);
    expect(lastMs.headers.get("warning")).toBe(warning(t0 + GRACE_MS));

    clock.set(t0 + GRACE_MS);
    const after = await call(t, `${marker}/c`);
    expect(await expectJson(after, 402)).toMatchObject({
      code: "payment_required",
      status: 402,
      detail: `A payment for this account failed on ${new Date(t0).toISOString()} and is still unpaid; requests are refused since ${new Date(t0 + GRACE_MS).toISOString()}, the end of the grace period. Pay the open invoice to continue.`,
    });
    expect((await originCalls(`${marker}/c`)).length).toBe(0);
    // The tenant API still reads; anything that costs money or makes keys is refused.
    expect((await gateway("/gateway/v1/usage", { headers: bearer(t.key) })).status).toBe(200);
    const newKey = await gateway("/gateway/v1/keys", {
      method: "POST",
      headers: { ...bearer(t.key), "content-type": "application/json" },
      body: JSON.stringify({ name: "k" }),
    });
    expect(await expectJson(newKey, 402)).toMatchObject({ code: "payment_required" });

    clock.advance(1_000);
    await invoicePaid(t, invoiceId);
    const next = await call(t, `${marker}/d`);
    expect(next.status).toBe(200);
    expect(next.headers.get("warning")).toBeNull();
    expect(await readTenant(t.tenantId)).toMatchObject({
      status: "active",
      pastDueSince: null,
      graceUntil: null,
    });
    expect((await originCalls(marker)).map((c) => c.path)).toEqual([
      `/v1/${marker}/a`,
      `/v1/${marker}/b`,
      `/v1/${marker}/d`,
    ]);
  });

  it("suspends the tenant when its subscription becomes unpaid, and when it is canceled (403 tenant_suspended)", async () => {
    clock.set(Date.now());
    for (const [status, type] of [
      ["unpaid", "customer.subscription.updated"],
      ["canceled", "customer.subscription.deleted"],
    ] as const) {
      // Two declined charges a day apart, then the subscription is left unpaid or canceled.
      await retryRules({ attempts: 2, interval_days: 1, exhausted: status });
      const t = await seedBilledTenant();
      const invoiceId = await paymentFails(t);
      expect((await readTenant(t.tenantId)).status, status).toBe("past_due");
      const ended = (await retryCharge(t, invoiceId)).one(type);
      expect(ended.data.object, status).toMatchObject({ id: t.subscriptionId, status });
      await expectJson(await deliver(ended), 200);
      const res = await call(t, uniq());
      expect(await expectJson(res, 403), status).toMatchObject({ code: "tenant_suspended" });
      expect(await readTenant(t.tenantId)).toMatchObject({ status: "suspended", statusReason: "billing" });
    }
  });

  it("keeps an operator's suspension through an invoice.paid; only the operator lifts it", async () => {
    clock.set(Date.now());
    const t = await seedBilledTenant();
    const invoiceId = await paymentFails(t);
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "suspended" }), 200);
    clock.advance(1_000);
    await invoicePaid(t, invoiceId);
    expect(await readTenant(t.tenantId)).toMatchObject({ status: "suspended", statusReason: "operator" });
    expect(await expectJson(await call(t, uniq()), 403)).toMatchObject({ code: "tenant_suspended" });

    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "active" }), 200);
    expect((await call(t, uniq())).status).toBe(200);
  });

  it("takes the grace period from BILLING_GRACE_PERIOD_S, and refuses a bad value with 503 naming it", async () => {
    const t0 = clock.set(Date.now());
    const t = await seedBilledTenant();
    const event = (await billPeriod(t, "fail")).one("invoice.payment_failed");
    const bad = await deliver(event, { BILLING_GRACE_PERIOD_S: "7d" });
    expect(await expectJson(bad, 503)).toMatchObject({
      code: "misconfigured",
      detail: expect.stringContaining("BILLING_GRACE_PERIOD_S"),
    });
    await expectJson(await deliver(event, { BILLING_GRACE_PERIOD_S: "60" }), 200);
    expect((await readTenant(t.tenantId)).graceUntil).toBe(new Date(t0 + 60_000).toISOString());
    clock.set(t0 + 60_000);
    expect(await expectJson(await call(t, uniq()), 402)).toMatchObject({ code: "payment_required" });
  });
});
