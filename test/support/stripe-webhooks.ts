/**
 * Stripe webhook deliveries for tests inside workerd: Event JSON (the Stripe stand-in's own recorded
 * events, see test/support/stripe-billing-cycle.ts, or one built around an object), signed with the
 * `stripe` package's `generateTestHeaderStringAsync` exactly as Stripe signs, and POSTed to the
 * Worker's real default export with `STRIPE_WEBHOOK_SECRET` set and the gateway's Stripe client
 * pointed at the stand-in (or, by an env change, at a dead port: Stripe unreachable).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import Stripe from "stripe";
import worker from "../../workers/index";
import { admin, expectJson, uniq } from "./gateway";
import { STANDIN } from "./stripe-standin";

export const WEBHOOK_SECRET = "whsec_test_gateway_webhooks";

type Json = Record<string, unknown>;

/** Event JSON around a (snapshot of an) object. */
export function stripeEvent(type: string, object: Json, id = `evt_${uniq()}${uniq()}`): Json {
  return {
    id,
    object: "event",
    api_version: "2025-10-29.clover",
    created: Math.floor(Date.now() / 1000),
    type,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object },
  };
}

/** A `Stripe-Signature` header for `payload`, as Stripe makes it. */
export function sign(
  payload: string,
  options: { secret?: string; timestamp?: number } = {},
): Promise<string> {
  return Stripe.webhooks.generateTestHeaderStringAsync({
    payload,
    secret: options.secret ?? WEBHOOK_SECRET,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
    cryptoProvider: Stripe.createSubtleCryptoProvider(),
  });
}

/** POSTs a raw body to `/webhooks/stripe` through the Worker's default export, with the given env changes. */
export async function postWebhook(
  body: string,
  headers: Record<string, string>,
  envChanges: Record<string, string | undefined> = {},
): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request("https://gateway.test/webhooks/stripe", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    }),
    {
      ...env,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: STANDIN.origin,
      ...envChanges,
    } as typeof env,
    ctx,
  );
  // The request's log line (a waitUntil) settles once the body is read: read it first.
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return new Response(text, { status: res.status, headers: res.headers });
}

/** Delivers an event, signed, as Stripe would. */
export async function deliver(
  event: object,
  envChanges: Record<string, string | undefined> = {},
): Promise<Response> {
  const body = JSON.stringify(event);
  return postWebhook(body, { "stripe-signature": await sign(body) }, envChanges);
}

export interface BilledTenant {
  tenantId: string;
  key: string;
  customerId: string;
  subscriptionId: string;
}

/** A tenant on a metered plan: its Stripe customer and subscription made by the billing sync (on the stand-in). */
export async function seedBilledTenant(): Promise<BilledTenant> {
  const plan = await expectJson<{ id: string }>(
    await admin("POST", "/admin/v1/plans", {
      name: `billed-${uniq()}`,
      burstCapacity: 1000,
      refillTokens: 1000,
      refillPeriodSeconds: 1,
      entitlements: ["api"],
      pricing: {
        model: "metered",
        currency: "usd",
        baseFee: 4900,
        includedUnits: 1000,
        tiers: [{ upTo: null, unitAmount: 1 }],
      },
    }),
    201,
  );
  const slug = `w-${uniq()}`;
  const body = await expectJson<{
    tenant: { id: string; billing: { customerId: string; subscriptionId: string } };
    key: { key: string };
  }>(await admin("POST", "/admin/v1/tenants", { slug, name: slug, planId: plan.id }), 201);
  const { customerId, subscriptionId } = body.tenant.billing;
  if (!customerId || !subscriptionId)
    throw new Error(`tenant has no Stripe side: ${JSON.stringify(body.tenant)}`);
  return { tenantId: body.tenant.id, key: body.key.key, customerId, subscriptionId };
}

export interface TenantView {
  status: string;
  statusReason: string;
  pastDueSince: string | null;
  graceUntil: string | null;
  billing: { periodEnd: string | null };
}

export const readTenant = async (id: string) =>
  expectJson<TenantView>(await admin("GET", `/admin/v1/tenants/${id}`), 200);
