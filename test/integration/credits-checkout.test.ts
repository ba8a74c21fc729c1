/**
 * README "Prepaid credits", top-up: `POST /gateway/v1/credits/checkout` makes a Stripe Checkout
 * Session for the plan's credit pack, and `checkout.session.completed` grants its units once,
 * through the real path: the stand-in's pay page completes the session and records the event, which
 * is delivered signed to `POST /webhooks/stripe`; the receiver re-reads the session from Stripe (an
 * event claiming a payment that the session doesn't show grants nothing).
 */
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { balance, PREPAID } from "../support/credits";
import { bearer, expectJson, gateway, seedTenant } from "../support/gateway";
import { STANDIN, standinStripe } from "../support/stripe-standin";
import { deliver, stripeEvent } from "../support/stripe-webhooks";

const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

interface Checkout {
  id: string;
  url: string;
  units: number;
  amount: number;
  currency: string;
}

const buy = (key: string, body: unknown, headers: Record<string, string> = {}) =>
  gateway("/gateway/v1/credits/checkout", {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** Delivers an event, signed, to the Worker reading Stripe from the stand-in; returns the receiver's answer. */
async function deliverToWorker(event: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await deliver(event as Record<string, unknown>, { STRIPE_API_URL: STANDIN.origin });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("credit checkout", () => {
  it("makes a payment session for packs × the plan's pack price, with the grant in its metadata", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const out = await expectJson<Checkout>(await buy(t.key, { packs: 2 }), 201);
    expect(out).toMatchObject({ units: 200, amount: 1000, currency: "usd" });
    expect(out.url).toMatch(/^https?:\/\//);
    const session = await stripe.checkout.sessions.retrieve(out.id);
    expect(session).toMatchObject({
      mode: "payment",
      client_reference_id: t.tenantId,
      metadata: { tenant_id: t.tenantId, units: "200", plan_id: t.plan.id, pricing_version: "1" },
      payment_status: "unpaid",
    });
  });

  it("a retried purchase with the same Idempotency-Key returns the same session", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const first = await expectJson<Checkout>(
      await buy(t.key, { packs: 1 }, { "idempotency-key": "buy-1" }),
      201,
    );
    const again = await buy(t.key, { packs: 1 }, { "idempotency-key": "buy-1" });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await expectJson<Checkout>(again, 201)).id).toBe(first.id);
  });

  it("grants the units once when paid — the stand-in's own event, delivered twice; a forged paid event grants nothing", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const out = await expectJson<Checkout>(await buy(t.key, { packs: 3 }), 201);

    // Forged: a correctly signed event says paid, Stripe's session says unpaid.
    const unpaid = await stripe.checkout.sessions.retrieve(out.id);
    const forged = await deliverToWorker(
      stripeEvent("checkout.session.completed", { ...unpaid, payment_status: "paid" }),
    );
    expect(forged).toMatchObject({ status: 200, body: { outcome: "ignored" } });
    expect(await balance(t.tenantId)).toBe(0);

    // Pay on the stand-in's page: it completes the session and records checkout.session.completed.
    const paid = await fetch(out.url, { method: "POST", redirect: "manual" });
    expect(paid.status).toBeLessThan(400);
    const events = await stripe.events.list({ type: "checkout.session.completed", limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === out.id);
    expect(event).toBeDefined();
    expect(await deliverToWorker(event)).toMatchObject({ status: 200, body: { outcome: "applied" } });
    expect(await deliverToWorker(event)).toMatchObject({ status: 200, body: { duplicate: true } });
    // The same session in another event (a replay under a new id) grants nothing more either.
    expect((await deliverToWorker({ ...event, id: `${event?.id}_again` })).status).toBe(200);
    expect(await balance(t.tenantId)).toBe(300);
    // The proxy spends them: a request costs its route's units.
    const res = await gateway("/v1/credits-spend", { headers: bearer(t.key) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  });
});
