/**
 * A `stripe` client on the local Stripe stand-in, for tests inside workerd that drive it directly
 * (the gateway's own calls go through workers/shared/stripe.ts).
 */

import Stripe from "stripe";
import { inject } from "vitest";

export const STANDIN = new URL(inject("stripeUrl"));
export const STANDIN_KEY = "sk_test_gateway";

export function standinStripe(key = STANDIN_KEY, config: Stripe.StripeConfig = {}): Stripe {
  return new Stripe(key, {
    httpClient: Stripe.createFetchHttpClient(),
    host: STANDIN.hostname,
    port: Number(STANDIN.port),
    protocol: "http",
    ...config,
  });
}
