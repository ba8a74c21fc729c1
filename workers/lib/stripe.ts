/**
 * The Stripe client, built per use inside workerd with the fetch HTTP client. `STRIPE_API_URL`
 * points it at the local stand-in; unset, it talks to api.stripe.com — the same code path.
 * Retries are ours (outbox with backoff), so the library's own are off.
 */
import Stripe from "stripe";
import type { Bindings } from "../env";

export const DEFAULT_METER_EVENT_NAME = "gateway_units";

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

export const meterEventName = (env: Pick<Bindings, "STRIPE_METER_EVENT_NAME">) =>
  env.STRIPE_METER_EVENT_NAME ?? DEFAULT_METER_EVENT_NAME;
