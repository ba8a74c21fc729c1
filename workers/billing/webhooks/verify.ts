/**
 * Verifies a Stripe webhook delivery: the `Stripe-Signature` header against the raw body with the
 * endpoint's `whsec_` secret, through the `stripe` package's async verification (Web Crypto) with
 * Stripe's 300 s tolerance, then the event's minimal shape. Every failure is a 400: nothing is
 * read or changed for a delivery that does not prove it comes from Stripe.
 */
import Stripe from "stripe";
import { z } from "zod";
import { GatewayError } from "../../errors";

/** Stripe's own default: a signature older than 5 minutes is refused (replay protection). */
export const SIGNATURE_TOLERANCE_S = 300;

const EventShape = z.object({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  created: z.number().int().nonnegative(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});

const crypto = Stripe.createSubtleCryptoProvider();

export async function verifyStripeEvent(
  raw: string,
  signature: string | undefined,
  secret: string,
): Promise<Stripe.Event> {
  if (!signature) throw new GatewayError("bad_request", "The Stripe-Signature header is missing.");
  let event: unknown;
  try {
    event = await Stripe.webhooks.constructEventAsync(raw, signature, secret, SIGNATURE_TOLERANCE_S, crypto);
  } catch (error) {
    if (error instanceof SyntaxError) throw new GatewayError("bad_request", "The signed body is not JSON.");
    throw new GatewayError(
      "bad_request",
      `The Stripe-Signature header does not verify: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const shape = EventShape.safeParse(event);
  if (!shape.success) {
    throw new GatewayError("validation_failed", "The signed body is not a Stripe event.", {
      errors: shape.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return event as Stripe.Event;
}
