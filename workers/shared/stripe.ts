/**
 * The Stripe client, built per use inside workerd with the fetch HTTP client. `STRIPE_API_URL`
 * points it at the local stand-in; unset, it talks to api.stripe.com — the same code path.
 * Retries are ours (outbox with backoff), so the library's own are off.
 */
import Stripe from "stripe";
import { configOf } from "../config";
import type { Bindings } from "../env";

export function stripeClient(env: Pick<Bindings, "STRIPE_SECRET_KEY" | "STRIPE_API_URL">): Stripe | null {
  if (!env.STRIPE_SECRET_KEY) return null;
  const base = env.STRIPE_API_URL ? new URL(env.STRIPE_API_URL) : null;
  return new Stripe(env.STRIPE_SECRET_KEY, {
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: 0,
    timeout: 10_000,
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === "https:" ? 443 : 80)),
          protocol: base.protocol === "https:" ? "https" : "http",
        }
      : {}),
  });
}

/**
 * The meter event name, from the vars parsed once per isolate (workers/config.ts): the cron reporter
 * and reconciliation never report under a typo — a bad `STRIPE_METER_EVENT_NAME` throws
 * `misconfigured` here as it does at every HTTP request.
 */
export const meterEventName = (env: Bindings) => configOf(env).stripeMeterEventName;

const meterIds = new Map<string, string>();

/**
 * The id of the billing meter usage is reported under, creating it (sum of `value` per
 * `stripe_customer_id`) the first time. Cached per isolate.
 */
export async function ensureMeter(stripe: Stripe, eventName: string): Promise<string> {
  const cached = meterIds.get(eventName);
  if (cached) return cached;
  let id: string | undefined;
  for await (const meter of stripe.billing.meters.list({ limit: 100 })) {
    if (meter.event_name === eventName && meter.status === "active") id = meter.id;
  }
  if (!id) {
    const meter = await stripe.billing.meters.create(
      {
        display_name: "API gateway units",
        event_name: eventName,
        default_aggregation: { formula: "sum" },
        customer_mapping: { event_payload_key: "stripe_customer_id", type: "by_id" },
        value_settings: { event_payload_key: "value" },
      },
      { idempotencyKey: `meter-${eventName}` },
    );
    id = meter.id;
  }
  meterIds.set(eventName, id);
  return id;
}

/**
 * Creates the Stripe customer of a tenant. The idempotency key is the tenant id, which is never
 * reused: a retry gets the same customer, and a new tenant with an old tenant's slug gets its own.
 */
export async function createCustomer(
  stripe: Stripe,
  tenant: { id: string; slug: string; name: string },
): Promise<string> {
  const customer = await stripe.customers.create(
    { name: tenant.name, metadata: { gateway_tenant_id: tenant.id, gateway_tenant_slug: tenant.slug } },
    { idempotencyKey: `customer-${tenant.id}` },
  );
  return customer.id;
}
