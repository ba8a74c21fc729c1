/**
 * Buying credits: a Stripe Checkout Session (mode `payment`) for `packs` of the tenant's plan's
 * credit pack (the `_pack` price of its pricing version, workers/billing/stripe-catalog.ts), for the
 * tenant's Stripe customer. The session carries the grant in its metadata (tenant, units, plan,
 * pricing version); paying it sends `checkout.session.completed`, which grants the units once
 * (checkout-completed.ts).
 */
import { eq } from "drizzle-orm";
import { plans, tenants } from "../../../schema";
import type { Bindings } from "../../env";
import { GatewayError } from "../../errors";
import { log } from "../../log";
import type { Db } from "../../shared/db";
import { meterEventName, stripeClient } from "../../shared/stripe";
import { ensurePlanPrices } from "../stripe-catalog";

export const MAX_PACKS = 100;

export interface CreditCheckout {
  id: string;
  url: string;
  units: number;
  amount: number;
  currency: string;
}

export interface CheckoutRequest {
  packs: number;
  successUrl: string;
  cancelUrl: string;
  /** Never reused: the Stripe idempotency key of the session. */
  requestId: string;
}

/** Stripe unreachable or failing: 503, nothing bought (the session is made again on the retry). */
async function unlessStripeDown<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    log.error("credit checkout: Stripe failed", { error: String(error) });
    throw new GatewayError("service_unavailable", "Payments are unavailable right now. Retry shortly.", {
      headers: { "retry-after": "5" },
    });
  }
}

export async function createCreditCheckout(
  env: Bindings,
  db: Db,
  tenantId: string,
  request: CheckoutRequest,
): Promise<CreditCheckout> {
  const [row] = await db
    .select({ tenant: tenants, plan: plans })
    .from(tenants)
    .innerJoin(plans, eq(plans.id, tenants.planId))
    .where(eq(tenants.id, tenantId));
  if (!row) throw new GatewayError("not_found", "No such tenant.");
  const { tenant, plan } = row;
  const pricing = plan.pricing;
  if (pricing.model !== "prepaid") {
    throw new GatewayError(
      "conflict",
      `The ${plan.name} plan is not prepaid: it has no credits to buy (usage is invoiced instead).`,
    );
  }
  const stripe = stripeClient(env);
  if (!stripe) throw new GatewayError("service_unavailable", "Payments are not configured on this gateway.");
  const customer = tenant.stripeCustomerId;
  if (!customer) {
    throw new GatewayError(
      "service_unavailable",
      "The billing account is still being set up. Retry in a minute.",
      { headers: { "retry-after": "60" } },
    );
  }
  const units = pricing.creditPack.units * request.packs;
  const session = await unlessStripeDown(async () => {
    const prices = await ensurePlanPrices(stripe, meterEventName(env), plan, plan.pricingVersion, pricing);
    if (!prices.pack) throw new GatewayError("internal", "The plan has no credit pack price.");
    return await stripe.checkout.sessions.create(
      {
        mode: "payment",
        customer,
        line_items: [{ price: prices.pack, quantity: request.packs }],
        client_reference_id: tenant.id,
        metadata: {
          tenant_id: tenant.id,
          units: String(units),
          plan_id: plan.id,
          pricing_version: String(plan.pricingVersion),
        },
        success_url: request.successUrl,
        cancel_url: request.cancelUrl,
      },
      { idempotencyKey: `credits-checkout-${request.requestId}` },
    );
  });
  if (!session.url) throw new GatewayError("internal", "Stripe returned a session without a URL.");
  return {
    id: session.id,
    url: session.url,
    units,
    amount: session.amount_total ?? pricing.creditPack.amount * request.packs,
    currency: session.currency ?? pricing.currency,
  };
}
