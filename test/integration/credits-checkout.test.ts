/**
 * README "Prepaid credits", top-up: `POST /gateway/v1/credits/checkout` makes a Stripe Checkout
 * Session for the plan's credit pack, and `checkout.session.completed` grants its units once,
 * re-reading the session from Stripe (an event claiming a payment that the session doesn't show
 * grants nothing). Needs the stand-in's Checkout Sessions (`POST /v1/checkout/sessions`, a local
 * pay page at the session's `url` that a POST completes).
 */
import { env } from "cloudflare:workers";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { applyCheckoutCompleted } from "../../workers/billing/credits/checkout-completed";
import { openDb } from "../../workers/shared/db";
import { balance, PREPAID } from "../support/credits";
import { bearer, expectJson, gateway, seedTenant } from "../support/gateway";
import { standinStripe } from "../support/stripe-standin";

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

const completedEvent = (session: Stripe.Checkout.Session, id: string) =>
  ({
    id,
    object: "event",
    type: "checkout.session.completed",
    data: { object: session },
  }) as unknown as Stripe.Event;

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

  it("grants the units once when paid; an event for an unpaid session grants nothing", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const out = await expectJson<Checkout>(await buy(t.key, { packs: 3 }), 201);
    const { db, close } = openDb(env);
    try {
      // Forged: the event says paid, Stripe's session says unpaid.
      const unpaid = await stripe.checkout.sessions.retrieve(out.id);
      const forged = { ...unpaid, payment_status: "paid" } as Stripe.Checkout.Session;
      expect(await applyCheckoutCompleted(env, db, completedEvent(forged, "evt_forged"))).toBe("ignored");
      expect(await balance(t.tenantId)).toBe(0);

      // Pay on the stand-in's page.
      const paid = await fetch(out.url, { method: "POST", redirect: "manual" });
      expect(paid.status).toBeLessThan(400);
      const session = await stripe.checkout.sessions.retrieve(out.id);
      expect(session.payment_status).toBe("paid");
      expect(await applyCheckoutCompleted(env, db, completedEvent(session, "evt_1"))).toBe("applied");
      expect(await applyCheckoutCompleted(env, db, completedEvent(session, "evt_1"))).toBe("duplicate");
      expect(await applyCheckoutCompleted(env, db, completedEvent(session, "evt_2"))).toBe("duplicate");
      expect(await balance(t.tenantId)).toBe(300);
    } finally {
      await close();
    }
  });
});
