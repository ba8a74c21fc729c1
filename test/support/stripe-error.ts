/** For tests of Stripe calls that must fail: works in workerd (vitest) and in Node (test/contract). */
import Stripe from "stripe";

/** The Stripe error a promise rejects with (fails the test when it resolves or throws anything else). */
export async function stripeError(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Stripe.errors.StripeError) return err;
    throw err;
  }
  throw new Error("expected the call to fail with a StripeError");
}
